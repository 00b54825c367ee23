import * as z from 'zod';
import { sharedToken } from './auth.ts';
import type { WebhookSourceShape } from './source.ts';
import { type Admission, type Admit, invalid } from './admission.ts';
import { type Deploy, deployId, type DeployStatus, utc } from '../events/model.ts';
import { canonicalEnvironment, type Settings, teamOf } from '../events/settings.ts';
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
const PIPELINE_END_EVENTS = new Set(['orca:pipeline:complete', 'orca:pipeline:failed']);

/** The Echo event itself, out of a `wrap`ped body when it is one. */
function unwrapEchoEvent(body: unknown): unknown {
  if (typeof body === 'object' && body !== null && !('details' in body) && 'eventName' in body) {
    const nested = Object.entries(body).find(
      ([key, value]) => key !== 'eventName' && typeof value === 'object' && value !== null,
    );
    if (nested !== undefined) return nested[1];
  }
  return body;
}

const admitSpinnaker: Admit = (_headers, body): Admission => {
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

const Stage = z.object({
  type: z.string().nullish(),
  status: z.string().nullish(),
  startTime: epochMs.nullish(),
  endTime: epochMs.nullish(),
  context: z
    .object({
      account: z.unknown().optional(),
      credentials: z.unknown().optional(),
      clusters: z.array(z.object({ account: z.unknown().optional() }).loose()).nullish(),
    })
    .loose()
    .nullish(),
});
type Stage = z.infer<typeof Stage>;

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
      /** A Jenkins (or other CI) trigger's build: `scm[]` with the built sha. */
      buildInfo: z
        .object({
          scm: z.array(z.object({ sha1: z.string().nullish(), remoteUrl: z.string().nullish() }).loose()).nullish(),
        })
        .loose()
        .nullish(),
      /** The artifacts the trigger brought: a git artifact's `version` is its sha. */
      artifacts: z
        .array(
          z
            .object({ type: z.string().nullish(), reference: z.string().nullish(), version: z.string().nullish() })
            .loose(),
        )
        .nullish(),
    })
    .default({}),
  stages: z.array(Stage).default([]),
});
type Execution = z.infer<typeof Execution>;

const EchoEvent = z.object({
  details: jsonObjectOrString.pipe(z.object({ type: z.string(), created: epochMs.nullish() })),
  content: jsonObjectOrString.pipe(z.object({ execution: Execution })),
});

/**
 * The stages that deploy (Orca's stage types for each cloud provider): the environment comes from
 * their target accounts only, never from a bake, a manual judgment or a script stage.
 */
const DEPLOY_STAGE_TYPES = new Set([
  'deploy',
  'createServerGroup',
  'cloneServerGroup',
  'deployManifest',
  'patchManifest',
  'deployCloudFormation',
  'deployAppEngine',
  'deployService',
  'cfDeployService',
  'deployCloudrunManifest',
  'deployLambda',
]);

/** Stages that never ran say nothing about where the pipeline deployed. */
const NOT_RUN = new Set(['NOT_STARTED', 'SKIPPED']);

function accountsOf(stage: Stage): string[] {
  const context = stage.context ?? {};
  const accounts = [context.account, context.credentials, ...(context.clusters ?? []).map((c) => c.account)];
  return accounts.filter((a): a is string => typeof a === 'string' && a !== '');
}

interface Target {
  environment: string;
  stages: Stage[];
}

/** Each environment the pipeline's deploy stages deployed to, in the order they ran. */
function targetsOf(settings: Settings, execution: Execution): Target[] {
  const targets: Target[] = [];
  for (const stage of execution.stages) {
    if (!DEPLOY_STAGE_TYPES.has(stage.type ?? '') || NOT_RUN.has(stage.status ?? '')) continue;
    for (const account of accountsOf(stage)) {
      const environment = settings.spinnaker.accounts[account] ?? canonicalEnvironment(settings, account);
      const known = targets.find((t) => t.environment === environment);
      if (known === undefined) targets.push({ environment, stages: [stage] });
      else known.stages.push(stage);
    }
  }
  return targets;
}

const STAGE_STATUS: Record<string, DeployStatus> = {
  SUCCEEDED: 'success',
  TERMINAL: 'failure',
  FAILED_CONTINUE: 'failure',
  STOPPED: 'failure',
  CANCELED: 'cancelled',
};

const SHA = /^[0-9a-f]{40}$/;
/** `owner/name` out of a GitHub URL: a clone URL, a web URL, or an API `repos/<owner>/<name>/…` one. */
const repositoryIn = (url: string | null | undefined): string | undefined =>
  url == null ? undefined : /github\.com[/:](?:repos\/)?([^/]+\/[^/.]+?)(?:\.git)?(?:\/|$)/.exec(url)?.[1];

/**
 * The commit a pipeline deployed, where its trigger says: a git trigger's hash (repository from its
 * project and slug); else the build a CI trigger (Jenkins, Travis, Concourse) ran, `buildInfo.scm[0]`;
 * else a git artifact the trigger brought (`github/file`, `git/repo`…) whose version is a sha.
 */
function originOf(trigger: Execution['trigger']): { sha?: string; repository?: string } {
  if (trigger.type === 'git' && trigger.hash) {
    const repository = trigger.project && trigger.slug ? `${trigger.project}/${trigger.slug}` : undefined;
    return { sha: trigger.hash, ...(repository ? { repository } : {}) };
  }
  const scm = trigger.buildInfo?.scm?.find((s) => s.sha1 != null && SHA.test(s.sha1));
  if (scm?.sha1 != null) {
    const repository = repositoryIn(scm.remoteUrl);
    return { sha: scm.sha1, ...(repository ? { repository } : {}) };
  }
  const artifact = trigger.artifacts?.find(
    (a) => a.version != null && SHA.test(a.version) && /^(git|github|gitlab|bitbucket)\//.test(a.type ?? ''),
  );
  if (artifact?.version != null) {
    const repository = repositoryIn(artifact.reference);
    return { sha: artifact.version, ...(repository ? { repository } : {}) };
  }
  return {};
}

export const normalizeSpinnaker: Normalizer = (body, _eventType, { settings, receivedAt }) => {
  const event = parseOrThrow(EchoEvent, unwrapEchoEvent(body));
  if (!PIPELINE_END_EVENTS.has(event.details.type)) return [];
  const execution = event.content.execution;
  // Orca reports a cancelled pipeline as `failed`; the execution says what really happened.
  const cancelled = execution.status === 'CANCELED' || execution.canceled === true;
  const status: DeployStatus = cancelled ? 'cancelled' : execution.status === 'SUCCEEDED' ? 'success' : 'failure';
  const trigger = execution.trigger;
  const origin = originOf(trigger);
  const actor = (cancelled ? (execution.canceledBy ?? trigger.user) : trigger.user) ?? null;
  const finishedAt = execution.endTime ?? event.details.created;
  const repository = origin.repository;
  const team = teamOf(settings, execution.application, repository);
  const base = {
    kind: 'deploy' as const,
    source: 'spinnaker' as const,
    service: execution.application,
    ...(origin.sha !== undefined ? { commitSha: origin.sha } : {}),
    ...(repository ? { repository } : {}),
    actor: actor === 'anonymous' ? null : actor,
    ...(team ? { team } : {}),
    externalId: execution.id,
  };
  const pipelineDeploy = (environment: string): Deploy => ({
    ...base,
    id: deployId.spinnaker(execution.id),
    environment,
    status,
    startedAt: utc(execution.startTime ?? finishedAt ?? receivedAt),
    finishedAt: utc(finishedAt ?? receivedAt),
  });

  const targets = targetsOf(settings, execution);
  if (targets.length === 0) return [pipelineDeploy(canonicalEnvironment(settings, execution.name ?? 'unknown'))];
  const production = targets.filter((t) => settings.productionEnvironments.includes(t.environment));
  // A promotion pipeline (staging, then production) is a production deploy: one per production target.
  if (production.length === 0) return [pipelineDeploy(targets.at(-1)?.environment ?? 'unknown')];
  const [only] = production;
  if (production.length === 1 && only !== undefined)
    return [{ ...pipelineDeploy(only.environment), ...targetTimesAndStatus(only, status, cancelled) }];
  return production.map((target) => ({
    ...pipelineDeploy(target.environment),
    id: `${deployId.spinnaker(execution.id)}:${target.environment}`,
    ...targetTimesAndStatus(target, status, cancelled),
  }));
};

/** A target's own outcome: its stages' status (a cancelled pipeline may have deployed it already). */
function targetTimesAndStatus(
  target: Target,
  pipelineStatus: DeployStatus,
  cancelled: boolean,
): Partial<Pick<Deploy, 'status' | 'startedAt' | 'finishedAt'>> {
  const statuses = target.stages.map((s) => STAGE_STATUS[s.status ?? '']);
  const status = statuses.includes('failure')
    ? 'failure'
    : statuses.length > 0 && statuses.every((s) => s === 'success')
      ? 'success'
      : cancelled
        ? 'cancelled'
        : pipelineStatus;
  const starts = target.stages.map((s) => s.startTime).filter((t): t is number => typeof t === 'number');
  const ends = target.stages.map((s) => s.endTime).filter((t): t is number => typeof t === 'number');
  return {
    status,
    ...(starts.length > 0 ? { startedAt: utc(Math.min(...starts)) } : {}),
    ...(ends.length > 0 ? { finishedAt: utc(Math.max(...ends)) } : {}),
  };
}

/** Spinnaker Echo's REST endpoint: the token as a Bearer, or as Basic auth's password. */
export const spinnaker = {
  name: 'spinnaker',
  path: '/spinnaker',
  secretVariable: 'SPINNAKER_WEBHOOK_TOKEN',
  credential: 'authorization',
  authenticate: sharedToken({ basic: true }),
  admit: admitSpinnaker,
  normalize: normalizeSpinnaker,
} as const satisfies WebhookSourceShape;
