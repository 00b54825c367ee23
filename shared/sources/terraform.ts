import { z } from 'zod';
import { type Admission, type Admit, invalid } from './admission.ts';

/**
 * HCP Terraform / Terraform Enterprise notification payloads.
 * https://developer.hashicorp.com/terraform/cloud-docs/api-docs/notification-configurations#notification-payload
 * Version 1 describes runs; version 2 (assessments, workspace events) carries no deploy.
 */
const NotificationEnvelope = z.object({
  payload_version: z.union([z.literal(1), z.literal(2)]),
});

const RunEnvelope = z.object({
  run_id: z.string().nullable(),
  notifications: z.array(z.object({ trigger: z.string(), run_status: z.string().nullish() })).min(1),
});

/** Decided on `run_status`, never on the trigger: these end a run that applied, failed or stopped. */
export const FINAL_RUN_STATUSES = new Set(['applied', 'errored', 'canceled', 'force_canceled', 'discarded']);

export const admitTerraform: Admit = (_headers, body): Admission => {
  const envelope = NotificationEnvelope.safeParse(body);
  if (!envelope.success) return invalid(envelope.error);
  if (envelope.data.payload_version === 2) {
    return {
      kind: 'answer',
      eventType: 'payload_version_2',
      message: 'assessment and workspace notifications are not counted',
    };
  }
  const run = RunEnvelope.safeParse(body);
  if (!run.success) return invalid(run.error);
  const triggers = run.data.notifications;
  if (triggers.some((n) => n.trigger === 'verification')) {
    return { kind: 'answer', eventType: 'verification', message: 'verified' };
  }
  const final = triggers.find((n) => FINAL_RUN_STATUSES.has(n.run_status ?? ''));
  const eventType = (final ?? triggers[0])?.trigger ?? 'unknown';
  if (final === undefined) {
    return { kind: 'answer', eventType, message: `run status ${triggers[0]?.run_status ?? 'null'} does not end a run` };
  }
  if (run.data.run_id === null) return { kind: 'invalid', field: 'run_id', problem: 'required for a finished run' };
  return { kind: 'publish', eventType, deliveryId: `${run.data.run_id}:${final.run_status ?? ''}` };
};
