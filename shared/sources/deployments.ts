import { createHash } from 'node:crypto';
import { sharedToken } from './auth.ts';
import type { WebhookSourceShape } from './source.ts';
import * as z from 'zod';
import { type Admission, type Admit, invalid } from './admission.ts';
import { type Deploy, deployId, utc } from '../events/model.ts';
import { canonicalEnvironment, teamOf } from '../events/settings.ts';
import { type Normalizer, parseOrThrow } from './normalize.ts';

const isoTime = z.iso.datetime({ offset: true });

/** The body any CI posts to `/deployments` after a deploy (Terraform CI jobs, Jenkins, Argo…). */
const DeploymentFields = z.object({
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
});
const DeploymentBody = DeploymentFields.refine((d) => Date.parse(d.finishedAt) >= Date.parse(d.startedAt), {
  path: ['finishedAt'],
  message: 'must not be before startedAt',
});
type DeploymentBody = z.infer<typeof DeploymentBody>;

const KNOWN_FIELDS: readonly string[] = Object.keys(DeploymentFields.shape);

/** Names CI scripts reach for, and the field each meant. */
const MEANT: Readonly<Record<string, string>> = {
  sha: 'commitSha',
  commit: 'commitSha',
  gitsha: 'commitSha',
  revision: 'commitSha',
  env: 'environment',
  repo: 'repository',
  app: 'service',
  application: 'service',
  result: 'status',
  started: 'startedAt',
  start: 'startedAt',
  finished: 'finishedAt',
  end: 'finishedAt',
  user: 'actor',
  author: 'actor',
  link: 'url',
  runid: 'id',
};

const squash = (name: string) => name.toLowerCase().replace(/[^a-z0-9]/g, '');

/**
 * One line per field of the body that DevStats does not read: the delivery counts without them,
 * and a field that was meant as a known one (`sha`, `commit_sha`, `env`) says which.
 */
function unknownFieldWarnings(body: unknown): string[] {
  if (typeof body !== 'object' || body === null) return [];
  return Object.keys(body)
    .filter((name) => !KNOWN_FIELDS.includes(name))
    .slice(0, 20)
    .map((name) => {
      const meant = KNOWN_FIELDS.find((known) => squash(known) === squash(name)) ?? MEANT[squash(name)];
      const shown = JSON.stringify(name.slice(0, 100));
      return meant === undefined
        ? `field ${shown} is not read and was ignored; the fields are ${KNOWN_FIELDS.join(', ')}`
        : `field ${shown} is not read and was ignored; did you mean "${meant}"?`;
    });
}

/** The body's own id, else a digest of what makes a deploy the same deploy. */
function ciDeployKey(body: DeploymentBody): string {
  if (body.id !== undefined) return body.id;
  const identity = [body.service, body.environment, body.commitSha ?? '', new Date(body.finishedAt).toISOString()].join(
    '\n',
  );
  return createHash('sha256').update(identity).digest('hex').slice(0, 32);
}

const admitDeployment: Admit = (_headers, body): Admission => {
  const deployment = DeploymentBody.safeParse(body);
  if (!deployment.success) return invalid(deployment.error);
  const warnings = unknownFieldWarnings(body);
  return {
    kind: 'publish',
    eventType: 'deployment',
    deliveryId: deployId.ci(deployment.data.service, ciDeployKey(deployment.data)),
    ...(warnings.length > 0 ? { warnings } : {}),
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

/** Any CI's deploy, posted as DevStats' own body with a Bearer token. */
export const deployments = {
  name: 'ci',
  path: '/deployments',
  secretVariable: 'DEPLOY_WEBHOOK_TOKEN',
  credential: 'authorization',
  authenticate: sharedToken({ basic: false }),
  admit: admitDeployment,
  normalize: normalizeDeployment,
} as const satisfies WebhookSourceShape;
