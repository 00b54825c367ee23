import { createHash } from 'node:crypto';
import { z } from 'zod';
import { type Admission, type Admit, invalid } from './admission.ts';
import { type Deploy, deployId, utc } from '../events.ts';
import { canonicalEnvironment, teamOf } from '../settings.ts';
import { type Normalizer, parseOrThrow } from './normalize.ts';

const isoTime = z.iso.datetime({ offset: true });

/** The body any CI posts to `/deployments` after a deploy (Terraform CI jobs, Jenkins, Argo…). */
export const DeploymentBody = z
  .object({
    service: z.string().min(1).max(200),
    environment: z.string().min(1).max(200),
    status: z.enum(['success', 'failure', 'cancelled']),
    startedAt: isoTime,
    finishedAt: isoTime,
    commitSha: z
      .string()
      .regex(/^[0-9a-f]{7,64}$/i, 'must be a hex commit sha')
      .optional(),
    repository: z
      .string()
      .regex(/^[^/\s]+\/[^/\s]+$/, 'must be "owner/name"')
      .optional(),
    version: z.string().max(200).optional(),
    actor: z.string().max(200).nullish(),
    url: z.url().optional(),
    /** The CI's own run id: recommended, it makes a retried post count once. */
    id: z.string().min(1).max(200).optional(),
  })
  .refine((d) => Date.parse(d.finishedAt) >= Date.parse(d.startedAt), {
    path: ['finishedAt'],
    message: 'must not be before startedAt',
  });
export type DeploymentBody = z.infer<typeof DeploymentBody>;

/** The body's own id, else a digest of what makes a deploy the same deploy. */
export function ciDeployKey(body: DeploymentBody): string {
  if (body.id !== undefined) return body.id;
  const identity = [body.service, body.environment, body.commitSha ?? '', new Date(body.finishedAt).toISOString()].join(
    '\n',
  );
  return createHash('sha256').update(identity).digest('hex').slice(0, 32);
}

export const admitDeployment: Admit = (_headers, body): Admission => {
  const deployment = DeploymentBody.safeParse(body);
  if (!deployment.success) return invalid(deployment.error);
  return {
    kind: 'publish',
    eventType: 'deployment',
    deliveryId: deployId.ci(deployment.data.service, ciDeployKey(deployment.data)),
  };
};

// ---- normalisation (process) ------------------------------------------------------------

export const normalizeDeployment: Normalizer = (body, _eventType, { settings }) => {
  const d = parseOrThrow(DeploymentBody, body);
  const team = teamOf(settings, d.service, d.repository);
  const key = ciDeployKey(d);
  const deploy: Deploy = {
    kind: 'deploy',
    id: deployId.ci(d.service, key),
    source: 'ci',
    service: d.service,
    environment: canonicalEnvironment(settings, d.environment),
    status: d.status,
    startedAt: utc(d.startedAt),
    finishedAt: utc(d.finishedAt),
    ...(d.commitSha ? { commitSha: d.commitSha } : {}),
    ...(d.repository ? { repository: d.repository } : {}),
    ...(d.version ? { version: d.version } : {}),
    actor: d.actor ?? null,
    ...(team ? { team } : {}),
    ...(d.url ? { url: d.url } : {}),
    externalId: key,
  };
  return [deploy];
};
