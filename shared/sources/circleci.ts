import * as z from 'zod';
import { versionedSignatureList } from './auth.ts';
import type { WebhookSourceShape } from './source.ts';
import { type Deploy, type DeployStatus, utc } from '../events/model.ts';
import {
  aliasedEnvironment,
  canonicalEnvironment,
  isEnvironmentName,
  type Settings,
  teamOf,
} from '../events/settings.ts';
import { type Admission, type Admit, invalid } from './admission.ts';
import { type Normalizer, parseOrThrow } from './normalize.ts';

/**
 * CircleCI outbound webhooks: `workflow-completed` and `job-completed`, each with an event `id`
 * that CircleCI keeps across its retries. https://circleci.com/docs/webhooks-reference/
 */
const Envelope = z.object({ id: z.string().min(1), type: z.string().min(1) });
const WorkflowEnvelope = z.object({
  workflow: z.object({ id: z.string().min(1), name: z.string(), status: z.string() }),
  project: z.object({ name: z.string().min(1) }),
});

const admitCircleci: Admit = (_headers, body): Admission => {
  const envelope = Envelope.safeParse(body);
  if (!envelope.success) return invalid(envelope.error);
  const { id, type } = envelope.data;
  if (type !== 'workflow-completed') {
    return { kind: 'answer', eventType: type, message: `${type} events are not counted (workflows are)` };
  }
  const workflow = WorkflowEnvelope.safeParse(body);
  if (!workflow.success) return invalid(workflow.error);
  // Whether the workflow is a deploy depends on the configured rules: process decides.
  return { kind: 'publish', eventType: type, deliveryId: id };
};

// ---- normalisation (process) ------------------------------------------------------------

const WorkflowCompleted = z.object({
  type: z.literal('workflow-completed'),
  project: z.object({ name: z.string(), slug: z.string().optional() }),
  workflow: z.object({
    id: z.string(),
    name: z.string(),
    status: z.string(),
    created_at: z.string(),
    stopped_at: z.string().nullish(),
    url: z.string().nullish(),
  }),
  pipeline: z
    .object({
      vcs: z.object({ revision: z.string().nullish(), target_repository_url: z.string().nullish() }).nullish(),
    })
    .nullish(),
  happened_at: z.string().optional(),
});

const STATUS: Record<string, DeployStatus> = {
  success: 'success',
  failed: 'failure',
  error: 'failure',
  canceled: 'cancelled',
};

/** `https://github.com/acme/infra(.git)` → `acme/infra`. */
function repositoryOf(url: string | null | undefined): string | undefined {
  if (!url) return undefined;
  const match = /^(?:https?:\/\/|git@)[^/:]+[/:]([^/]+)\/([^/]+?)(?:\.git)?\/?$/.exec(url);
  return match ? `${match[1]}/${match[2]}` : undefined;
}

/** The service and environment a workflow deploys: a configured rule, else a name with deploy or apply. */
function deployTarget(
  settings: Settings,
  project: { name: string; slug?: string | undefined },
  workflow: string,
): { service: string; environment: string } | undefined {
  const rule = settings.circleci.deploys.find(
    (r) =>
      r.workflow === workflow && (r.project === undefined || r.project === project.name || r.project === project.slug),
  );
  if (rule !== undefined) return { service: rule.service, environment: rule.environment };
  if (!/deploy|apply/i.test(workflow)) return undefined;
  return { service: project.name, environment: workflowEnvironment(settings, workflow) };
}

const VERBS = /^(deploy|deployment|apply|release|promote)$/i;
const FILLERS = /^(to|and|then|in|on|env|environment)$/i;

/**
 * The environment a deploy workflow's name gives: the words after its verb (`deploy-to-prod`,
 * `apply-staging`), else an environment word before it (`staging-deploy`) but not `test`, which
 * before the verb is a step (`build-test-deploy`, `test-and-deploy`); else the default.
 */
export function workflowEnvironment(settings: Settings, workflow: string): string {
  const words = workflow.split(/[-_.\s/:]+/).filter((w) => w !== '');
  const verb = words.findIndex((w) => VERBS.test(w));
  const after = words.slice(verb + 1).filter((w) => !FILLERS.test(w) && !VERBS.test(w));
  for (let start = 0; start < after.length; start++) {
    for (let end = after.length; end > start; end--) {
      const name = after.slice(start, end).join('-');
      if (isEnvironmentName(settings, name)) return canonicalEnvironment(settings, name);
    }
  }
  for (const word of words.slice(0, Math.max(verb, 0)).reverse()) {
    const environment = isEnvironmentName(settings, word) ? aliasedEnvironment(settings, word) : undefined;
    if (environment !== undefined && environment !== 'test') return environment;
  }
  return settings.circleci.defaultEnvironment;
}

export const normalizeCircleci: Normalizer = (body, eventType, { settings, receivedAt }) => {
  if (eventType !== 'workflow-completed') return [];
  const event = parseOrThrow(WorkflowCompleted, body);
  const status = STATUS[event.workflow.status];
  const target = deployTarget(settings, event.project, event.workflow.name);
  if (status === undefined || target === undefined) return [];
  const repository = repositoryOf(event.pipeline?.vcs?.target_repository_url);
  const sha = event.pipeline?.vcs?.revision;
  const team = teamOf(settings, target.service, repository);
  const deploy: Deploy = {
    kind: 'deploy',
    id: `circleci:${event.workflow.id}`,
    source: 'circleci',
    service: target.service,
    environment: target.environment,
    status,
    startedAt: utc(event.workflow.created_at),
    finishedAt: utc(event.workflow.stopped_at ?? event.happened_at ?? receivedAt),
    ...(sha ? { commitSha: sha } : {}),
    ...(repository ? { repository } : {}),
    actor: null,
    ...(team ? { team } : {}),
    ...(event.workflow.url ? { url: event.workflow.url } : {}),
    externalId: event.workflow.id,
  };
  return [deploy];
};

/** CircleCI's outbound webhooks (https://circleci.com/docs/webhooks/): `circleci-signature: v1=<hex>`. */
export const circleci = {
  name: 'circleci',
  path: '/circleci',
  secretVariable: 'CIRCLECI_WEBHOOK_SECRET',
  credential: 'circleci-signature',
  authenticate: versionedSignatureList({ header: 'circleci-signature', version: 'v1' }),
  admit: admitCircleci,
  normalize: normalizeCircleci,
} as const satisfies WebhookSourceShape;
