import * as z from 'zod';

/** UTC ISO-8601 with milliseconds, the one time format of every canonical event. */
const UtcTime = z.iso.datetime({ precision: 3 }).refine((s) => s.endsWith('Z'), 'must be UTC (Z)');

/** Any ISO-8601 time (with an offset, or epoch ms) to the canonical UTC form. */
export function utc(time: string | number | Date): string {
  const date = time instanceof Date ? time : new Date(time);
  // The message never quotes the value: it may end up in a log line.
  if (Number.isNaN(date.getTime())) throw new RangeError('not a time');
  return date.toISOString();
}

const DeploySource = z.enum(['github', 'spinnaker', 'terraform', 'circleci', 'cloudbuild', 'ci']);
type DeploySource = z.infer<typeof DeploySource>;

export const DeployStatus = z.enum(['success', 'failure', 'cancelled']);
export type DeployStatus = z.infer<typeof DeployStatus>;

export const Deploy = z.object({
  kind: z.literal('deploy'),
  id: z.string().min(1),
  source: DeploySource,
  service: z.string().min(1),
  environment: z.string().min(1),
  status: DeployStatus,
  startedAt: UtcTime,
  finishedAt: UtcTime,
  commitSha: z.string().optional(),
  repository: z.string().optional(),
  version: z.string().optional(),
  actor: z.string().nullable().optional(),
  team: z.string().optional(),
  url: z.string().optional(),
  externalId: z.string().min(1),
  /**
   * Paths of its repository the deploy's service owns, where the source says (an HCP Terraform
   * workspace's working directory): used when the configuration gives the service none.
   */
  paths: z.array(z.string()).optional(),
  /** Finished more than 10 minutes after its receipt: kept, never exported, counted nowhere. */
  futureDated: z.literal(true).optional(),
});
export type Deploy = z.infer<typeof Deploy>;

export const Commit = z.object({
  kind: z.literal('commit'),
  id: z.string().min(1),
  repository: z.string().min(1),
  branch: z.string(),
  sha: z.string().min(1),
  authorLogin: z.string().optional(),
  authorName: z.string(),
  /** Kept in the store only (never tagged): it joins a name-only commit to its author's login. */
  authorEmail: z.string().optional(),
  timestamp: UtcTime,
  isBot: z.boolean(),
  /** Parent shas, where a source gives them (backfill from the commits API; push webhooks do not). */
  parents: z.array(z.string()).optional(),
  /**
   * The files it added, modified or removed (the push's per-commit lists, or the commits API):
   * which path-owned services and teams it belongs to. Absent: unknown (it then belongs to every
   * service and team of its repository, a data-quality finding).
   */
  paths: z.array(z.string()).optional(),
  /** A revert (its message starts `Revert "` or says `This reverts commit`): a fix-forward's mark. */
  revert: z.literal(true).optional(),
});
export type Commit = z.infer<typeof Commit>;

export const PullRequest = z.object({
  kind: z.literal('pull_request'),
  id: z.string().min(1),
  repository: z.string().min(1),
  number: z.number().int(),
  authorLogin: z.string(),
  isBot: z.boolean(),
  createdAt: UtcTime,
  mergedAt: UtcTime,
  mergeCommitSha: z.string().min(1),
  baseRef: z.string(),
  headSha: z.string(),
  commits: z.number().int().nonnegative(),
  /** Its labels and head branch, matched against the `hotfix` patterns (deployment rework). */
  labels: z.array(z.string()).optional(),
  headRef: z.string().optional(),
  /** A revert (GitHub's revert button: title `Revert "…"`, branch `revert-<n>-…`). */
  revert: z.literal(true).optional(),
});
export type PullRequest = z.infer<typeof PullRequest>;

export const Push = z.object({
  kind: z.literal('push'),
  id: z.string().min(1),
  repository: z.string().min(1),
  branch: z.string(),
  before: z.string(),
  after: z.string(),
  commitShas: z.array(z.string()),
  pushedAt: UtcTime,
  /** A force push: `before` is not an ancestor of `after`, so the walk never follows it. */
  forced: z.boolean(),
});
export type Push = z.infer<typeof Push>;

export const IncidentSource = z.enum(['pagerduty', 'opsgenie', 'datadog', 'github']);
export type IncidentSource = z.infer<typeof IncidentSource>;

/**
 * A production failure reported by an incident tool: one per incident, whatever number of updates
 * it took. Each update carries the state it left the incident in and when (`updatedAt`); the
 * stored incident is the merge of every update seen (`mergeIncident`), so the order they arrive
 * in does not matter: the earliest start, and the state of the latest update. A reopened
 * incident is open again, and resolved at its last resolution.
 */
export const Incident = z.object({
  kind: z.literal('incident'),
  id: z.string().min(1),
  source: IncidentSource,
  /** The DevStats service (the vendor's service through `incidents.services`), when the payload names one. */
  service: z.string().min(1).optional(),
  environment: z.string().min(1),
  severity: z.string().optional(),
  title: z.string().optional(),
  startedAt: UtcTime,
  resolvedAt: UtcTime.optional(),
  state: z.enum(['open', 'resolved']),
  updatedAt: UtcTime,
  /** A deploy the incident names (`deploy:<id>` in its tags or body), or a sha it names (`sha:<hex>`). */
  deployId: z.string().min(1).optional(),
  sha: z
    .string()
    .regex(/^[0-9a-f]{7,40}$/)
    .optional(),
  url: z.string().optional(),
  /** Its latest update says it is no incident after all (a GitHub issue that lost its label): counted nowhere. */
  withdrawn: z.literal(true).optional(),
  /** No update said when it started (a monitor's recovery without its trigger): no time to restore. */
  startUnknown: z.literal(true).optional(),
});
export type Incident = z.infer<typeof Incident>;

export type Change = Commit | PullRequest | Push;
export type CanonicalEvent = Deploy | Change | Incident;
export type EventKind = CanonicalEvent['kind'];
export const CanonicalEvent = z.discriminatedUnion('kind', [Deploy, Commit, PullRequest, Push, Incident]);

/**
 * One commit shipped to production by a service, with its lead time to the first successful
 * production deploy of the service whose history holds it: one per (service, commit), so its id
 * is `<service>|<repository>@<sha>`. When the commit is a merged pull request's merge commit, the
 * pull request's review and time-to-deploy too. `via: "pull_request"` marks a pull request
 * standing in for commits no push recorded. Times are clamped at 0: a commit dated after its
 * deploy (clock skew) keeps its `committedAt`, so the report can count it.
 */
export const ShippedChange = z.object({
  id: z.string().min(1),
  deployId: z.string().min(1),
  service: z.string(),
  environment: z.string(),
  repository: z.string(),
  sha: z.string(),
  via: z.enum(['push', 'pull_request']),
  committedAt: UtcTime,
  deployedAt: UtcTime,
  leadTimeSeconds: z.number(),
  pullRequest: z
    .object({
      number: z.number().int(),
      createdAt: UtcTime,
      mergedAt: UtcTime,
      reviewSeconds: z.number(),
      timeToDeploySeconds: z.number(),
    })
    .optional(),
});
export type ShippedChange = z.infer<typeof ShippedChange>;

export const deployId = {
  github: (deploymentId: number) => `github:${deploymentId}`,
  spinnaker: (executionId: string) => `spinnaker:${executionId}`,
  terraform: (runId: string) => `terraform:${runId}`,
  /** Scoped by service: two CIs' run numbers may collide, a service's may not. */
  ci: (service: string, key: string) => `ci:${service}:${key}`,
};
export const shippedId = (service: string, repository: string, sha: string) => `${service}|${repository}@${sha}`;
export const commitId = (repository: string, sha: string) => `${repository}@${sha}`;
export const pullRequestId = (repository: string, number: number) => `${repository}#${number}`;
export const incidentId = (source: IncidentSource, key: string) => `${source}:${key}`;
export const pushId = (repository: string, branch: string, before: string, after: string) =>
  `${repository}:${branch}:${before}..${after}`;
