import * as z from 'zod';
import { sharedToken, versionedSignatureList } from './auth.ts';
import type { WebhookSourceShape } from './source.ts';
import { type Admission, type Admit, invalid } from './admission.ts';
import { type Incident, incidentId, type IncidentSource, utc } from '../events/model.ts';
import { canonicalEnvironment, type Settings } from '../events/settings.ts';
import { type Normalizer, type NormalizeContext, parseOrThrow, UnusablePayload } from './normalize.ts';

/**
 * Incidents from PagerDuty (webhooks v3), Opsgenie (the Webhook integration), Datadog (monitor
 * alerts and incident notifications through the Webhooks integration, with the payload templates
 * in docs/sources/datadog.md) and GitHub issues (in ./github.ts). Each delivery is one update of one incident:
 * the state it leaves the incident in and when; the store merges the updates (`mergeIncident`).
 */

// ---- what every source shares -------------------------------------------------------------

/** `deploy:<id>` and `sha:<hex>` in tags, labels, titles or bodies: the deploy an incident names. */
export function referencesIn(texts: ReadonlyArray<string | null | undefined>): { deployId?: string; sha?: string } {
  const found: { deployId?: string; sha?: string } = {};
  for (const text of texts) {
    if (text === undefined || text === null) continue;
    const deploy = /(?:^|[\s,;(])deploy:([A-Za-z0-9_.:/@-]+[A-Za-z0-9_])/.exec(text)?.[1];
    const sha = /(?:^|[\s,;(])sha:([0-9a-fA-F]{7,40})\b/.exec(text)?.[1];
    if (deploy !== undefined && found.deployId === undefined) found.deployId = deploy;
    if (sha !== undefined && found.sha === undefined) found.sha = sha.toLowerCase();
  }
  return found;
}

/** The value of the first `name:value` tag among `tags`. */
export function tagValue(tags: readonly string[], name: string): string | undefined {
  const prefix = `${name}:`;
  const tag = tags.map((t) => t.trim()).find((t) => t.toLowerCase().startsWith(prefix) && t.length > prefix.length);
  return tag?.slice(prefix.length);
}

/** A vendor's name of a service, through `incidents.services`; undefined when the payload names none. */
export function incidentService(settings: Settings, name: string | null | undefined): string | undefined {
  const trimmed = name?.trim();
  if (trimmed === undefined || trimmed === '') return undefined;
  return settings.incidents.services[trimmed] ?? trimmed;
}

/** `env:<name>` among the tags, through the environment rules; production when none says otherwise. */
function incidentEnvironment(settings: Settings, tags: readonly string[]): string {
  const env = tagValue(tags, 'env') ?? tagValue(tags, 'environment');
  return env === undefined ? (settings.productionEnvironments[0] ?? 'production') : canonicalEnvironment(settings, env);
}

/** A time from an ISO string or epoch milliseconds (a number or digits); UnusablePayload naming the field if neither. */
function timeOf(value: string | number | null | undefined, field: string): string {
  if (value === undefined || value === null || value === '') throw new UnusablePayload(`${field}: is required`);
  const epoch = typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : undefined;
  try {
    return utc(epoch ?? value);
  } catch {
    throw new UnusablePayload(`${field}: is not a time`);
  }
}

interface Update {
  source: IncidentSource;
  key: string;
  state: 'open' | 'resolved';
  startedAt: string;
  updatedAt: string;
  resolvedAt?: string | undefined;
  service?: string | undefined;
  environment: string;
  severity?: string | null | undefined;
  title?: string | null | undefined;
  url?: string | null | undefined;
  references: { deployId?: string; sha?: string };
}

function incidentOf(update: Update): Incident {
  const incident: Incident = {
    kind: 'incident',
    id: incidentId(update.source, update.key),
    source: update.source,
    environment: update.environment,
    // An update dated before the incident started (clock skew between vendor systems) starts it.
    startedAt: update.startedAt < update.updatedAt ? update.startedAt : update.updatedAt,
    state: update.state,
    updatedAt: update.updatedAt,
    ...update.references,
  };
  if (update.service !== undefined) incident.service = update.service;
  if (update.severity) incident.severity = update.severity;
  if (update.title) incident.title = update.title;
  if (update.url) incident.url = update.url;
  if (update.state === 'resolved') {
    const resolvedAt = update.resolvedAt ?? update.updatedAt;
    incident.resolvedAt = resolvedAt < incident.startedAt ? incident.startedAt : resolvedAt;
  }
  return incident;
}

// ---- PagerDuty webhooks v3 -------------------------------------------------------------------
// https://developer.pagerduty.com/docs/webhooks-overview (event envelope, incident.* event types)

/** The incident events that change what DevStats counts; the others (annotated, escalated, …) are answered 200. */
const PAGERDUTY_EVENTS: Readonly<Record<string, 'open' | 'resolved'>> = {
  'incident.triggered': 'open',
  'incident.acknowledged': 'open',
  'incident.unacknowledged': 'open',
  'incident.reopened': 'open',
  'incident.resolved': 'resolved',
};

const PagerdutyEnvelope = z.object({
  event: z.object({
    id: z.string().min(1),
    event_type: z.string().min(1),
    occurred_at: z.string().min(1),
    data: z.object({ id: z.string().min(1) }).loose(),
  }),
});

const admitPagerduty: Admit = (_headers, body): Admission => {
  const envelope = z.object({ event: z.object({ event_type: z.string().min(1) }).loose() }).safeParse(body);
  if (!envelope.success) return invalid(envelope.error);
  const eventType = envelope.data.event.event_type;
  if (eventType === 'pagey.ping') return { kind: 'answer', eventType, message: 'pong' };
  if (PAGERDUTY_EVENTS[eventType] === undefined)
    return { kind: 'answer', eventType, message: `${eventType} events are not counted` };
  const event = PagerdutyEnvelope.safeParse(body);
  if (!event.success) return invalid(event.error);
  return { kind: 'publish', eventType, deliveryId: event.data.event.id };
};

const PagerdutyEvent = z.object({
  event: z.object({
    event_type: z.string(),
    occurred_at: z.string(),
    data: z.object({
      id: z.string().min(1),
      html_url: z.string().nullish(),
      created_at: z.string().nullish(),
      title: z.string().nullish(),
      service: z.object({ summary: z.string().nullish() }).nullish(),
      priority: z.object({ summary: z.string().nullish() }).nullish(),
      urgency: z.string().nullish(),
    }),
  }),
});

const normalizePagerduty: Normalizer = (body, eventType, { settings }: NormalizeContext) => {
  const { event } = parseOrThrow(PagerdutyEvent, body);
  const state = PAGERDUTY_EVENTS[event.event_type] ?? PAGERDUTY_EVENTS[eventType];
  if (state === undefined) return [];
  const updatedAt = timeOf(event.occurred_at, 'event.occurred_at');
  const { data } = event;
  return [
    incidentOf({
      source: 'pagerduty',
      key: data.id,
      state,
      startedAt: data.created_at ? timeOf(data.created_at, 'event.data.created_at') : updatedAt,
      updatedAt,
      service: incidentService(settings, data.service?.summary),
      environment: settings.productionEnvironments[0] ?? 'production',
      severity: data.priority?.summary ?? data.urgency,
      title: data.title,
      url: data.html_url,
      references: referencesIn([data.title]),
    }),
  ];
};

// ---- Opsgenie (Webhook integration) ----------------------------------------------------------
// https://support.atlassian.com/opsgenie/docs/integrate-opsgenie-with-webhook/ (action, alert, source)

const OPSGENIE_ACTIONS: Readonly<Record<string, 'open' | 'resolved'>> = {
  Create: 'open',
  Acknowledge: 'open',
  UnAcknowledge: 'open',
  Close: 'resolved',
};

const OpsgenieEnvelope = z.object({
  action: z.string().min(1),
  alert: z.object({ alertId: z.string().min(1), createdAt: z.union([z.number(), z.string()]) }).loose(),
});

const admitOpsgenie: Admit = (_headers, body): Admission => {
  const envelope = OpsgenieEnvelope.safeParse(body);
  if (!envelope.success) return invalid(envelope.error);
  const { action, alert } = envelope.data;
  if (OPSGENIE_ACTIONS[action] === undefined)
    return { kind: 'answer', eventType: action, message: `${action} actions are not counted` };
  const updatedAt = (alert as { updatedAt?: unknown }).updatedAt;
  return {
    kind: 'publish',
    eventType: action,
    deliveryId: `${alert.alertId}:${action}:${typeof updatedAt === 'number' || typeof updatedAt === 'string' ? updatedAt : ''}`,
  };
};

const OpsgenieEvent = z.object({
  action: z.string(),
  alert: z.object({
    alertId: z.string().min(1),
    message: z.string().nullish(),
    description: z.string().nullish(),
    tags: z.array(z.string()).nullish(),
    entity: z.string().nullish(),
    priority: z.string().nullish(),
    /** Epoch milliseconds. */
    createdAt: z.union([z.number(), z.string()]),
    /** Epoch nanoseconds (Opsgenie's own unit for it). */
    updatedAt: z.union([z.number(), z.string()]).nullish(),
    details: z.record(z.string(), z.unknown()).nullish(),
  }),
});

const normalizeOpsgenie: Normalizer = (body, _eventType, { settings, receivedAt }: NormalizeContext) => {
  const { action, alert } = parseOrThrow(OpsgenieEvent, body);
  const state = OPSGENIE_ACTIONS[action];
  if (state === undefined) return [];
  const tags = alert.tags ?? [];
  const detail = (name: string) => {
    const value = alert.details?.[name];
    return typeof value === 'string' ? value : undefined;
  };
  const startedAt = timeOf(alert.createdAt, 'alert.createdAt');
  const nanos = alert.updatedAt === undefined || alert.updatedAt === null ? undefined : Number(alert.updatedAt);
  const updatedAt =
    nanos === undefined || !Number.isFinite(nanos)
      ? receivedAt
      : timeOf(Math.floor(nanos / (nanos > 1e15 ? 1e6 : 1)), 'alert.updatedAt');
  return [
    incidentOf({
      source: 'opsgenie',
      key: alert.alertId,
      state,
      startedAt,
      updatedAt,
      service: incidentService(settings, tagValue(tags, 'service') ?? detail('service') ?? alert.entity),
      environment: incidentEnvironment(settings, [...tags, ...(detail('env') ? [`env:${detail('env')}`] : [])]),
      severity: alert.priority,
      title: alert.message,
      references: referencesIn([...tags, alert.message, alert.description, detail('deploy'), detail('sha')]),
    }),
  ];
};

// ---- Datadog (Webhooks integration, templates in docs/sources/datadog.md) ----------------------------------
// https://docs.datadoghq.com/integrations/webhooks/ ($ALERT_CYCLE_KEY, $ALERT_TRANSITION, $DATE, $TAGS)
// https://docs.datadoghq.com/incident_response/incident_management/setup_and_configuration/variables/

const MONITOR_TRANSITIONS: Readonly<Record<string, 'open' | 'resolved'>> = {
  Triggered: 'open',
  'Re-Triggered': 'open',
  Recovered: 'resolved',
};
const INCIDENT_STATUSES: Readonly<Record<string, 'open' | 'resolved'>> = {
  active: 'open',
  stable: 'open',
  resolved: 'resolved',
  completed: 'resolved',
};

const DatadogMonitor = z.object({
  kind: z.literal('monitor'),
  id: z.string().nullish(),
  alert_cycle_key: z.string().min(1),
  alert_transition: z.string().min(1),
  alert_title: z.string().nullish(),
  alert_priority: z.string().nullish(),
  date: z.union([z.string(), z.number()]),
  tags: z.string().nullish(),
  link: z.string().nullish(),
});
const DatadogIncident = z.object({
  kind: z.literal('incident'),
  incident_id: z.string().min(1),
  status: z.string().min(1),
  title: z.string().nullish(),
  severity: z.string().nullish(),
  created: z.union([z.string(), z.number()]),
  resolved: z.union([z.string(), z.number()]).nullish(),
  services: z.string().nullish(),
  tags: z.string().nullish(),
  url: z.string().nullish(),
});
const DatadogWebhook = z.discriminatedUnion('kind', [DatadogMonitor, DatadogIncident]);

const admitDatadog: Admit = (_headers, body): Admission => {
  const parsed = DatadogWebhook.safeParse(body);
  if (!parsed.success) return invalid(parsed.error);
  const hook = parsed.data;
  if (hook.kind === 'monitor') {
    if (MONITOR_TRANSITIONS[hook.alert_transition] === undefined)
      return {
        kind: 'answer',
        eventType: hook.alert_transition,
        message: `${hook.alert_transition} notifications are not counted`,
      };
    return {
      kind: 'publish',
      eventType: `monitor.${hook.alert_transition}`,
      deliveryId: hook.id ?? `${hook.alert_cycle_key}:${hook.alert_transition}:${hook.date}`,
    };
  }
  const status = hook.status.toLowerCase();
  if (INCIDENT_STATUSES[status] === undefined)
    return { kind: 'answer', eventType: `incident.${status}`, message: `incident status ${status} is not counted` };
  return {
    kind: 'publish',
    eventType: `incident.${status}`,
    deliveryId: `${hook.incident_id}:${status}:${hook.resolved ?? ''}`,
  };
};

const splitTags = (tags: string | null | undefined) =>
  (tags ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');

const normalizeDatadog: Normalizer = (body, _eventType, { settings, receivedAt }: NormalizeContext) => {
  const hook = parseOrThrow(DatadogWebhook, body);
  if (hook.kind === 'monitor') {
    const state = MONITOR_TRANSITIONS[hook.alert_transition];
    if (state === undefined) return [];
    const at = timeOf(hook.date, 'date');
    const tags = splitTags(hook.tags);
    const incident = incidentOf({
      source: 'datadog',
      key: `monitor:${hook.alert_cycle_key}`,
      state,
      // A recovery says when it recovered, not when the alert triggered: the trigger's update starts it.
      startedAt: at,
      updatedAt: at,
      service: incidentService(settings, tagValue(tags, 'service')),
      environment: incidentEnvironment(settings, tags),
      severity: hook.alert_priority,
      title: hook.alert_title,
      url: hook.link,
      references: referencesIn([...tags, hook.alert_title]),
    });
    // Until the trigger's update arrives (it may never: a monitor created while alerting), the
    // recovery's time is no start: the incident counts, but yields no time to restore, never 0 s.
    if (state === 'resolved') incident.startUnknown = true;
    return [incident];
  }
  const state = INCIDENT_STATUSES[hook.status.toLowerCase()];
  if (state === undefined) return [];
  const tags = splitTags(hook.tags);
  const resolvedAt = hook.resolved ? timeOf(hook.resolved, 'resolved') : undefined;
  return [
    incidentOf({
      source: 'datadog',
      key: `incident:${hook.incident_id}`,
      state,
      startedAt: timeOf(hook.created, 'created'),
      // Incident notifications carry no time of the update: the resolution's, else the receipt's.
      updatedAt: state === 'resolved' ? (resolvedAt ?? receivedAt) : receivedAt,
      resolvedAt,
      service: incidentService(settings, splitTags(hook.services)[0] ?? tagValue(tags, 'service')),
      environment: incidentEnvironment(settings, tags),
      severity: hook.severity,
      title: hook.title,
      url: hook.url,
      references: referencesIn([...tags, hook.title]),
    }),
  ];
};

// https://developer.pagerduty.com/docs/verifying-signatures: `v1=<hex HMAC-SHA256>`, several during a rotation.
export const pagerduty = {
  name: 'pagerduty',
  path: '/pagerduty',
  secretVariable: 'PAGERDUTY_WEBHOOK_SECRET',
  credential: 'x-pagerduty-signature',
  authenticate: versionedSignatureList({ header: 'X-PagerDuty-Signature', version: 'v1' }),
  admit: admitPagerduty,
  normalize: normalizePagerduty,
} as const satisfies WebhookSourceShape;

// Opsgenie's and Datadog's webhook integrations send the custom headers they are given: a Bearer token.
export const opsgenie = {
  name: 'opsgenie',
  path: '/opsgenie',
  secretVariable: 'OPSGENIE_WEBHOOK_TOKEN',
  credential: 'authorization',
  authenticate: sharedToken({ basic: false }),
  admit: admitOpsgenie,
  normalize: normalizeOpsgenie,
} as const satisfies WebhookSourceShape;

export const datadog = {
  name: 'datadog',
  path: '/datadog',
  secretVariable: 'DATADOG_WEBHOOK_TOKEN',
  credential: 'authorization',
  authenticate: sharedToken({ basic: false }),
  admit: admitDatadog,
  normalize: normalizeDatadog,
} as const satisfies WebhookSourceShape;
