import type { HistoryItem, HistorySource } from './core.ts';
import type { apiClient } from './http.ts';

/**
 * Incident history, fetched through the vendors' REST APIs and handed to `process` as the webhook
 * deliveries they would have been (the same normalisers, the same incident ids), so a live update
 * and a backfilled one of the same incident merge into one incident.
 */

export const PAGERDUTY_CREDENTIAL =
  'PAGERDUTY_API_TOKEN needs a read-only REST API key (Integrations → API Access Keys)';
export const OPSGENIE_CREDENTIAL = 'OPSGENIE_API_KEY needs an API key with Read access (Settings → API key management)';

/** PagerDuty's classic pagination stops at offset 10,000; a longer window is taken in months. */
const PAGE = 100;

interface PagerdutyIncident {
  id: string;
  title?: string | null;
  status: string;
  created_at: string;
  resolved_at?: string | null;
  last_status_change_at?: string | null;
  html_url?: string | null;
  service?: { summary?: string | null } | null;
  priority?: { summary?: string | null } | null;
  urgency?: string | null;
}

/**
 * PagerDuty (`GET /incidents`, REST API v2, offset pages of 100, every status): each incident as
 * its `incident.triggered` webhook event, and a resolved one as its `incident.resolved` too, at its
 * resolution (`resolved_at`, else the last status change). About 960 requests a minute are allowed
 * per key; the client keeps to 10 a second and waits when told.
 */
export function pagerdutyHistory(api: ReturnType<typeof apiClient>, baseUrl: string): HistorySource {
  const base = baseUrl.replace(/\/$/, '');
  return {
    name: 'pagerduty',
    credential: PAGERDUTY_CREDENTIAL,
    scopes: () => Promise.resolve(['incidents']),
    async *pages(_scope, from, window) {
      for (let offset = Number(from ?? 0) || 0; ; offset += PAGE) {
        const query = new URLSearchParams({
          since: window.since,
          until: window.until,
          limit: String(PAGE),
          offset: String(offset),
          time_zone: 'UTC',
          total: 'false',
        });
        for (const status of ['triggered', 'acknowledged', 'resolved']) query.append('statuses[]', status);
        const answer = (await api.getJson(`${base}/incidents?${query.toString()}`)) as {
          incidents: PagerdutyIncident[];
          more?: boolean;
        };
        const items = answer.incidents.flatMap((incident): HistoryItem[] => {
          const data = {
            id: incident.id,
            type: 'incident',
            title: incident.title ?? null,
            html_url: incident.html_url ?? null,
            created_at: incident.created_at,
            service: incident.service ?? null,
            priority: incident.priority ?? null,
            urgency: incident.urgency ?? null,
          };
          const event = (type: string, occurredAt: string): HistoryItem => ({
            source: 'pagerduty',
            eventType: type,
            deliveryId: `backfill:pagerduty:${incident.id}:${type}`,
            body: { event: { id: `backfill:${incident.id}:${type}`, event_type: type, occurred_at: occurredAt, data } },
          });
          const resolvedAt = incident.resolved_at ?? incident.last_status_change_at;
          return [
            event('incident.triggered', incident.created_at),
            ...(incident.status === 'resolved' && resolvedAt ? [event('incident.resolved', resolvedAt)] : []),
          ];
        });
        const more = answer.more === true && answer.incidents.length > 0;
        yield { items, next: more ? String(offset + PAGE) : undefined };
        if (!more) return;
      }
    },
  };
}

interface OpsgenieAlert {
  id: string;
  message?: string | null;
  status: string;
  tags?: string[] | null;
  entity?: string | null;
  priority?: string | null;
  createdAt: string;
  updatedAt?: string | null;
  /** Milliseconds from creation to close, where the alert is closed. */
  report?: { closeTime?: number | null } | null;
}

/**
 * Opsgenie (`GET /v2/alerts`, created in the window, oldest first, offset pages of 100): each
 * alert as its `Create` webhook action, and a closed one as its `Close` too, at its close
 * (`createdAt + report.closeTime`, else its last update). The list gives tags but no details: an
 * alert whose service is named only in its details maps to no service.
 */
export function opsgenieHistory(api: ReturnType<typeof apiClient>, baseUrl: string): HistorySource {
  const base = baseUrl.replace(/\/$/, '');
  return {
    name: 'opsgenie',
    credential: OPSGENIE_CREDENTIAL,
    scopes: () => Promise.resolve(['alerts']),
    async *pages(_scope, from, window) {
      const query = `createdAt >= ${String(Date.parse(window.since))} AND createdAt < ${String(Date.parse(window.until))}`;
      for (let offset = Number(from ?? 0) || 0; ; offset += PAGE) {
        const params = new URLSearchParams({
          query,
          limit: String(PAGE),
          offset: String(offset),
          sort: 'createdAt',
          order: 'asc',
        });
        const answer = (await api.getJson(`${base}/v2/alerts?${params.toString()}`)) as {
          data: OpsgenieAlert[];
          paging?: { next?: string | null };
        };
        const items = answer.data.flatMap((alert): HistoryItem[] => {
          const created = Date.parse(alert.createdAt);
          const action = (name: string, atMs: number): HistoryItem => ({
            source: 'opsgenie',
            eventType: name,
            deliveryId: `backfill:opsgenie:${alert.id}:${name}`,
            body: {
              action: name,
              alert: {
                alertId: alert.id,
                message: alert.message ?? null,
                tags: alert.tags ?? [],
                entity: alert.entity ?? null,
                priority: alert.priority ?? null,
                createdAt: created,
                // The webhook's unit: nanoseconds.
                updatedAt: atMs * 1e6,
              },
              source: { name: 'devstats backfill', type: 'API' },
            },
          });
          const closeTime = alert.report?.closeTime;
          const closedAt =
            typeof closeTime === 'number'
              ? created + closeTime
              : alert.updatedAt
                ? Date.parse(alert.updatedAt)
                : undefined;
          return [
            action('Create', created),
            ...(alert.status === 'closed' && closedAt !== undefined ? [action('Close', closedAt)] : []),
          ];
        });
        const more = typeof answer.paging?.next === 'string' && answer.data.length === PAGE;
        yield { items, next: more ? String(offset + PAGE) : undefined };
        if (!more) return;
      }
    },
  };
}
