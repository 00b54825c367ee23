import { z } from 'zod';
import { type Admission, type Admit, invalid } from './admission.ts';
import { type Deploy, deployId, utc } from '../events.ts';
import { canonicalEnvironment, type Settings, teamOf } from '../settings.ts';
import { type Normalizer, parseOrThrow } from './normalize.ts';

/**
 * Spinnaker Echo posts each event as `{details, content, eventId}`
 * (echo-api `Event`); `rest.endpoints[].flatten` sends `details` and `content` as JSON strings,
 * and `wrap` nests the event under `payload` (or the configured field) next to `eventName`.
 * https://spinnaker.io/docs/setup/other_config/features/notifications/#rest
 */
const jsonObjectOrString = z.union([
  z.record(z.string(), z.unknown()),
  z.string().transform((text, ctx) => {
    try {
      return z.record(z.string(), z.unknown()).parse(JSON.parse(text));
    } catch {
      ctx.addIssue({ code: 'custom', message: 'flattened value is not a JSON object' });
      return z.NEVER;
    }
  }),
]);

const EchoEnvelope = z.object({
  eventId: z.string().nullish(),
  details: jsonObjectOrString.pipe(z.object({ type: z.string().min(1), application: z.string().nullish() })),
  content: jsonObjectOrString.nullish(),
});

const PipelineContent = z.object({ execution: z.object({ id: z.string().min(1) }) });

/** Pipeline-level completions are deploys; starting, stage, task and orchestration events are not. */
export const PIPELINE_END_EVENTS = new Set(['orca:pipeline:complete', 'orca:pipeline:failed']);

/** The Echo event itself, out of a `wrap`ped body when it is one. */
export function unwrapEchoEvent(body: unknown): unknown {
  if (typeof body === 'object' && body !== null && !('details' in body) && 'eventName' in body) {
    const nested = Object.entries(body).find(
      ([key, value]) => key !== 'eventName' && typeof value === 'object' && value !== null,
    );
    if (nested !== undefined) return nested[1];
  }
  return body;
}

export const admitSpinnaker: Admit = (_headers, body): Admission => {
  const event = EchoEnvelope.safeParse(unwrapEchoEvent(body));
  if (!event.success) return invalid(event.error);
  const eventType = event.data.details.type;
  if (!PIPELINE_END_EVENTS.has(eventType)) {
    return { kind: 'answer', eventType, message: `${eventType} is not the end of a pipeline` };
  }
  const content = PipelineContent.safeParse(event.data.content);
  if (!content.success) return invalid(content.error, 'content');
  const deliveryId = event.data.eventId ?? `${content.data.execution.id}:${eventType}`;
  return { kind: 'publish', eventType, deliveryId };
};

// ---- normalisation (process) ------------------------------------------------------------

const epochMs = z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]);

const Execution = z.object({
  id: z.string(),
  application: z.string(),
  name: z.string().nullish(),
  status: z.string(),
  canceled: z.boolean().nullish(),
  canceledBy: z.string().nullish(),
  startTime: epochMs.nullish(),
  endTime: epochMs.nullish(),
  trigger: z
    .object({
      type: z.string().nullish(),
      user: z.string().nullish(),
      hash: z.string().nullish(),
      project: z.string().nullish(),
      slug: z.string().nullish(),
    })
    .default({}),
  stages: z
    .array(z.object({ type: z.string().nullish(), context: z.record(z.string(), z.unknown()).nullish() }))
    .default([]),
});

const EchoEvent = z.object({
  details: jsonObjectOrString.pipe(z.object({ type: z.string(), created: epochMs.nullish() })),
  content: jsonObjectOrString.pipe(z.object({ execution: Execution })),
});

function environmentOf(settings: Settings, execution: z.infer<typeof Execution>): string {
  // The deploy stages' target account says where the pipeline deployed.
  const accounts = execution.stages
    .map((stage) => stage.context?.account ?? stage.context?.credentials)
    .filter((a): a is string => typeof a === 'string' && a !== '');
  const account = accounts.find((a) => settings.spinnaker.accounts[a] !== undefined) ?? accounts[0];
  if (account !== undefined) return settings.spinnaker.accounts[account] ?? canonicalEnvironment(settings, account);
  return canonicalEnvironment(settings, execution.name ?? 'unknown');
}

export const normalizeSpinnaker: Normalizer = (body, _eventType, { settings, receivedAt }) => {
  const event = parseOrThrow(EchoEvent, unwrapEchoEvent(body));
  if (!PIPELINE_END_EVENTS.has(event.details.type)) return [];
  const execution = event.content.execution;
  // Orca reports a cancelled pipeline as `failed`; the execution says what really happened.
  const cancelled = execution.status === 'CANCELED' || execution.canceled === true;
  const status = cancelled ? 'cancelled' : execution.status === 'SUCCEEDED' ? 'success' : 'failure';
  const trigger = execution.trigger;
  const gitTrigger = trigger.type === 'git' && trigger.hash;
  const actor = (cancelled ? (execution.canceledBy ?? trigger.user) : trigger.user) ?? null;
  const finishedAt = execution.endTime ?? event.details.created;
  const repository = gitTrigger && trigger.project && trigger.slug ? `${trigger.project}/${trigger.slug}` : undefined;
  const team = teamOf(settings, execution.application, repository);
  const deploy: Deploy = {
    kind: 'deploy',
    id: deployId.spinnaker(execution.id),
    source: 'spinnaker',
    service: execution.application,
    environment: environmentOf(settings, execution),
    status,
    startedAt: utc(execution.startTime ?? finishedAt ?? receivedAt),
    finishedAt: utc(finishedAt ?? receivedAt),
    ...(gitTrigger ? { commitSha: trigger.hash ?? undefined } : {}),
    ...(repository ? { repository } : {}),
    actor: actor === 'anonymous' ? null : actor,
    ...(team ? { team } : {}),
    externalId: execution.id,
  };
  return [deploy];
};
