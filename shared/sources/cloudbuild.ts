import * as z from 'zod';
import type { TopicSourceShape } from './source.ts';
import { type Deploy, type DeployStatus, utc } from '../events/model.ts';
import { canonicalEnvironment, type Settings, teamOf } from '../events/settings.ts';
import { type Normalizer, parseOrThrow } from './normalize.ts';

/**
 * Cloud Build announces every build on the `cloud-builds` topic: the Build resource as JSON in the
 * data, `buildId` and `status` as attributes.
 * https://cloud.google.com/build/docs/subscribe-build-notifications
 * https://cloud.google.com/build/docs/api/reference/rest/v1/projects.builds#Build
 */
const Build = z.object({
  id: z.string().min(1),
  status: z.string(),
  createTime: z.string().nullish(),
  startTime: z.string().nullish(),
  finishTime: z.string().nullish(),
  logUrl: z.string().nullish(),
  tags: z.array(z.string()).nullish(),
  substitutions: z.record(z.string(), z.string()).nullish(),
});
type Build = z.infer<typeof Build>;

const STATUS: Record<string, DeployStatus | undefined> = {
  SUCCESS: 'success',
  FAILURE: 'failure',
  INTERNAL_ERROR: 'failure',
  TIMEOUT: 'failure',
  CANCELLED: 'cancelled',
  EXPIRED: 'cancelled',
  // QUEUED, PENDING, WORKING: not finished yet.
};

const SERVICE_TAG = 'devstats-service-';
const ENV_TAG = 'devstats-env-';

/** A configured rule (by trigger name or tag), else the devstats-service-/devstats-env- tags. */
function deployTarget(settings: Settings, build: Build): { service: string; environment: string } | undefined {
  const tags = build.tags ?? [];
  const trigger = build.substitutions?.TRIGGER_NAME;
  const rule = settings.cloudbuild.deploys.find(
    (r) => (r.trigger !== undefined && r.trigger === trigger) || (r.tag !== undefined && tags.includes(r.tag)),
  );
  if (rule !== undefined) return { service: rule.service, environment: rule.environment };
  const service = tags.find((t) => t.startsWith(SERVICE_TAG))?.slice(SERVICE_TAG.length);
  const environment = tags.find((t) => t.startsWith(ENV_TAG))?.slice(ENV_TAG.length);
  if (!service || !environment) return undefined;
  return { service, environment: canonicalEnvironment(settings, environment) };
}

export const normalizeCloudbuild: Normalizer = (body, _eventType, { settings, receivedAt }) => {
  const build = parseOrThrow(Build, body);
  const status = STATUS[build.status];
  const target = deployTarget(settings, build);
  if (status === undefined || target === undefined) return [];
  const substitutions = build.substitutions ?? {};
  const sha = substitutions.COMMIT_SHA;
  const repository = substitutions.REPO_FULL_NAME ?? substitutions.REPO_NAME;
  const finishedAt = utc(build.finishTime ?? receivedAt);
  const team = teamOf(settings, target.service, repository);
  const deploy: Deploy = {
    kind: 'deploy',
    id: `cloudbuild:${build.id}`,
    source: 'cloudbuild',
    service: target.service,
    environment: target.environment,
    status,
    startedAt: utc(build.startTime ?? build.createTime ?? finishedAt),
    finishedAt,
    ...(sha ? { commitSha: sha } : {}),
    ...(repository ? { repository } : {}),
    actor: null,
    ...(team ? { team } : {}),
    ...(build.logUrl ? { url: build.logUrl } : {}),
    externalId: build.id,
  };
  return [deploy];
};

/** Cloud Build's `cloud-builds` topic: a Pub/Sub source (`pubsubSources`), no route at ingest. */
export const cloudbuild = { name: 'cloudbuild', normalize: normalizeCloudbuild } as const satisfies TopicSourceShape;
