import { z } from 'zod';
import { type Admission, type Admit, invalid } from './admission.ts';

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
