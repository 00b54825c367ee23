import * as z from 'zod';
import { hmacSignature } from './auth.ts';
import type { WebhookSourceShape } from './source.ts';
import { type Admission, type Admit, invalid } from './admission.ts';
import { type Deploy, deployId, type DeployStatus, utc } from '../events/model.ts';
import { canonicalEnvironment, isEnvironmentName, type Settings, teamOf } from '../events/settings.ts';
import { type Normalizer, parseOrThrow } from './normalize.ts';

/**
 * HCP Terraform / Terraform Enterprise notification payloads.
 * https://developer.hashicorp.com/terraform/cloud-docs/api-docs/notification-configurations#notification-payload
 * Version 1 describes runs; version 2 (assessments: drift detected, check failure, assessment
 * failed; team and workspace events) carries no deploy. HashiCorp's documented version 2 example
 * sends the version as the string "2": both spellings are taken.
 */
const PayloadVersion = z.union([z.literal(1), z.literal(2), z.literal('1'), z.literal('2')]).transform(Number);
const NotificationEnvelope = z.object({
  payload_version: PayloadVersion,
  trigger: z.string().optional().catch(undefined),
});

const isVersion2 = (body: unknown): boolean =>
  typeof body === 'object' && body !== null && 'payload_version' in body && Number(body.payload_version) === 2;

const RunEnvelope = z.object({
  run_id: z.string().nullable(),
  notifications: z.array(z.object({ trigger: z.string(), run_status: z.string().nullish() })).min(1),
});

/** Decided on `run_status`, never on the trigger: these end a run that applied, failed or stopped. */
const FINAL_RUN_STATUSES = new Set(['applied', 'errored', 'canceled', 'force_canceled', 'discarded']);

const admitTerraform: Admit = (_headers, body): Admission => {
  const envelope = NotificationEnvelope.safeParse(body);
  if (!envelope.success) return invalid(envelope.error);
  if (envelope.data.payload_version === 2) {
    return {
      kind: 'answer',
      eventType: envelope.data.trigger ?? 'payload_version_2',
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

// ---- normalisation (process) ------------------------------------------------------------

const RunNotification = z.object({
  payload_version: z.union([z.literal(1), z.literal('1')]),
  run_id: z.string(),
  run_url: z.string().nullish(),
  run_created_at: z.string(),
  run_created_by: z.string().nullish(),
  workspace_name: z.string(),
  notifications: z
    .array(z.object({ trigger: z.string(), run_status: z.string().nullish(), run_updated_at: z.string().nullish() }))
    .min(1),
});

const STATUS: Record<string, DeployStatus> = {
  applied: 'success',
  errored: 'failure',
  canceled: 'cancelled',
  force_canceled: 'cancelled',
  discarded: 'cancelled',
};

/**
 * The configured workspace, else `<service>-<environment>` where the environment is the longest
 * dash-separated suffix made only of environment words (`billing-pre-prod` → billing, pre-prod;
 * `checkout-api-prod-eu` → checkout-api, production), else the whole name, environment unknown.
 */
export function workspaceTarget(settings: Settings, workspace: string): { service: string; environment: string } {
  const configured = settings.terraform.workspaces[workspace];
  if (configured !== undefined) return configured;
  const parts = workspace.split('-');
  for (let i = 1; i < parts.length; i++) {
    const environment = parts.slice(i).join('-');
    if (isEnvironmentName(settings, environment))
      return { service: parts.slice(0, i).join('-'), environment: canonicalEnvironment(settings, environment) };
  }
  return { service: workspace, environment: 'unknown' };
}

export const normalizeTerraform: Normalizer = (body, _eventType, { settings, receivedAt }) => {
  if (isVersion2(body)) return [];
  const run = parseOrThrow(RunNotification, body);
  const final = run.notifications.find((n) => FINAL_RUN_STATUSES.has(n.run_status ?? ''));
  if (final === undefined) return [];
  const { service, environment } = workspaceTarget(settings, run.workspace_name);
  const team = teamOf(settings, service);
  const deploy: Deploy = {
    kind: 'deploy',
    id: deployId.terraform(run.run_id),
    source: 'terraform',
    service,
    environment,
    status: STATUS[final.run_status ?? ''] ?? 'failure',
    startedAt: utc(run.run_created_at),
    finishedAt: utc(final.run_updated_at ?? receivedAt),
    actor: run.run_created_by ?? null,
    ...(team ? { team } : {}),
    ...(run.run_url ? { url: run.run_url } : {}),
    externalId: run.run_id,
  };
  return [deploy];
};

/** HCP Terraform / Terraform Enterprise notifications, signed with the notification token. */
export const terraform = {
  name: 'terraform',
  path: '/terraform',
  secretVariable: 'TERRAFORM_NOTIFICATION_TOKEN',
  credential: 'x-tfe-notification-signature',
  authenticate: hmacSignature({ header: 'X-TFE-Notification-Signature', algorithm: 'sha512', prefix: '' }),
  admit: admitTerraform,
  normalize: normalizeTerraform,
} as const satisfies WebhookSourceShape;
