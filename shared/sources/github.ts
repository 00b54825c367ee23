import * as z from 'zod';
import { hmacSignature } from './auth.ts';
import type { TopicSourceShape, WebhookSourceShape } from './source.ts';
import { type Admission, type Admit, invalid } from './admission.ts';
import {
  type Commit,
  commitId,
  type Deploy,
  deployId,
  type Incident,
  incidentId,
  type PullRequest,
  pullRequestId,
  type Push,
  pushId,
  utc,
} from '../events/model.ts';
import { canonicalEnvironment, isBot, teamOf } from '../events/settings.ts';
import { incidentService, referencesIn, tagValue } from './incidents.ts';
import { type Normalizer, parseOrThrow } from './normalize.ts';

// https://docs.github.com/en/webhooks/webhook-events-and-payloads
const Repository = z.object({ full_name: z.string().min(1) });

const PushEnvelope = z.object({
  ref: z.string().min(1),
  before: z.string(),
  after: z.string(),
  deleted: z.boolean().optional(),
  repository: Repository,
  commits: z.array(z.unknown()),
});

const PullRequestEnvelope = z.object({
  action: z.string(),
  number: z.number().int(),
  pull_request: z.object({ merged: z.boolean().nullish() }),
  repository: Repository,
});

const DeploymentStatusEnvelope = z.object({
  deployment_status: z.object({ state: z.string(), environment: z.string().min(1) }),
  deployment: z.object({ id: z.number().int(), sha: z.string().min(1) }),
  repository: Repository,
});

const IssuesEnvelope = z.object({
  action: z.string(),
  issue: z.object({ number: z.number().int(), created_at: z.string().min(1) }),
  repository: Repository,
});
/** Issue actions that open, close or label an incident. */
const ISSUE_ACTIONS = new Set(['opened', 'closed', 'reopened', 'labeled', 'unlabeled', 'edited']);

/** The deployment states that end a deployment; the others (queued, in_progress, …) say nothing yet. */
const TERMINAL_DEPLOYMENT_STATES = new Set(['success', 'failure', 'error']);

const admitGithub: Admit = (headers, body): Admission => {
  const eventType = headers['x-github-event'];
  if (eventType === undefined || eventType === '') {
    return { kind: 'invalid', field: 'X-GitHub-Event', problem: 'header is required' };
  }
  const deliveryId = headers['x-github-delivery'];
  if (deliveryId === undefined || deliveryId === '') {
    return { kind: 'invalid', field: 'X-GitHub-Delivery', problem: 'header is required' };
  }
  switch (eventType) {
    case 'ping':
      return { kind: 'answer', eventType, message: 'pong' };
    case 'push': {
      const push = PushEnvelope.safeParse(body);
      if (!push.success) return invalid(push.error);
      if (push.data.deleted === true)
        return { kind: 'answer', eventType, message: 'a branch deletion ships no commits' };
      return { kind: 'publish', eventType, deliveryId };
    }
    case 'pull_request': {
      const pr = PullRequestEnvelope.safeParse(body);
      if (!pr.success) return invalid(pr.error);
      // A closed, unmerged pull request still carries a merge_commit_sha: only `merged` counts.
      if (pr.data.action !== 'closed' || pr.data.pull_request.merged !== true) {
        return { kind: 'answer', eventType, message: 'only merged pull requests are counted' };
      }
      return { kind: 'publish', eventType, deliveryId };
    }
    case 'deployment_status': {
      const status = DeploymentStatusEnvelope.safeParse(body);
      if (!status.success) return invalid(status.error);
      if (!TERMINAL_DEPLOYMENT_STATES.has(status.data.deployment_status.state)) {
        return {
          kind: 'answer',
          eventType,
          message: `deployment state ${status.data.deployment_status.state} is not final`,
        };
      }
      return { kind: 'publish', eventType, deliveryId };
    }
    case 'issues': {
      const issue = IssuesEnvelope.safeParse(body);
      if (!issue.success) return invalid(issue.error);
      if (!ISSUE_ACTIONS.has(issue.data.action))
        return { kind: 'answer', eventType, message: `issues ${issue.data.action} changes no incident` };
      return { kind: 'publish', eventType, deliveryId };
    }
    default:
      // `deployment` and `workflow_run` would double-count deploys; the rest carry no deploy or change.
      return { kind: 'answer', eventType, message: `${eventType} events are not counted` };
  }
};

// ---- normalisation (process) ------------------------------------------------------------

const Login = z.object({ login: z.string() });

const PushEvent = z.object({
  ref: z.string(),
  before: z.string(),
  after: z.string(),
  deleted: z.boolean().optional(),
  forced: z.boolean().nullish(),
  repository: z.object({ full_name: z.string(), pushed_at: z.union([z.number(), z.string()]).nullish() }),
  commits: z.array(
    z.object({
      id: z.string(),
      timestamp: z.string(),
      message: z.string().nullish(),
      added: z.array(z.string()).nullish(),
      modified: z.array(z.string()).nullish(),
      removed: z.array(z.string()).nullish(),
      author: z.object({ name: z.string(), email: z.string().nullish(), username: z.string().nullish() }),
    }),
  ),
});

const PullRequestEvent = z.object({
  action: z.string(),
  number: z.number().int(),
  repository: z.object({ full_name: z.string() }),
  pull_request: z.object({
    user: Login,
    title: z.string().nullish(),
    labels: z.array(z.union([z.string(), z.object({ name: z.string() })])).nullish(),
    created_at: z.string(),
    merged: z.boolean().nullish(),
    merged_at: z.string().nullish(),
    merge_commit_sha: z.string().nullish(),
    base: z.object({ ref: z.string() }),
    head: z.object({ sha: z.string(), ref: z.string().nullish() }),
    commits: z.number().int().optional(),
  }),
});

const DeploymentStatusEvent = z.object({
  deployment_status: z.object({
    state: z.string(),
    environment: z.string(),
    created_at: z.string(),
    target_url: z.string().nullish(),
    log_url: z.string().nullish(),
  }),
  deployment: z.object({
    id: z.number().int(),
    sha: z.string(),
    created_at: z.string(),
    creator: Login.nullish(),
    payload: z.unknown().optional(),
  }),
  repository: z.object({ full_name: z.string(), name: z.string() }),
  // Present when a GitHub Actions run set the status: its triggering actor is who deployed.
  workflow_run: z.object({ triggering_actor: Login.nullish() }).nullish(),
});

function serviceFromPayload(payload: unknown): string | undefined {
  let value = payload;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value) as unknown;
    } catch {
      return undefined;
    }
  }
  if (typeof value === 'object' && value !== null && 'service' in value && typeof value.service === 'string') {
    return value.service;
  }
  return undefined;
}

/** GitHub's commits API lists at most 3000 files of a commit: more are as good as unknown. */
const MAX_PATHS = 3000;

/** A push's per-commit file lists as the commit's paths; none given: unknown (no `paths`). */
function pathsOf(c: {
  added?: string[] | null | undefined;
  modified?: string[] | null | undefined;
  removed?: string[] | null | undefined;
}): { paths?: string[] } {
  if (c.added == null && c.modified == null && c.removed == null) return {};
  const paths = [...new Set([...(c.added ?? []), ...(c.modified ?? []), ...(c.removed ?? [])])].sort();
  return paths.length > MAX_PATHS ? {} : { paths };
}

/**
 * A revert as git and GitHub write one: `git revert` and GitHub's revert button both title it
 * `Revert "<subject>"` and say `This reverts commit <sha>.` in the body.
 */
function isRevertMessage(message: string | null | undefined): boolean {
  return message != null && (/^Revert "/.test(message) || /^This reverts commit [0-9a-f]{7,40}/m.test(message));
}

const IssuesEvent = z.object({
  action: z.string(),
  /** The label an `unlabeled` (or `labeled`) action added or removed. */
  label: z.object({ name: z.string() }).nullish(),
  repository: z.object({ full_name: z.string().min(1) }),
  issue: z.object({
    number: z.number().int(),
    title: z.string(),
    body: z.string().nullish(),
    html_url: z.string(),
    state: z.string(),
    created_at: z.string(),
    updated_at: z.string().nullish(),
    closed_at: z.string().nullish(),
    labels: z.array(z.union([z.string(), z.object({ name: z.string() })])).default([]),
  }),
});

export const normalizeGithub: Normalizer = (body, eventType, { settings, receivedAt }) => {
  switch (eventType) {
    case 'push': {
      const push = parseOrThrow(PushEvent, body);
      // Tags and branch deletions ship no commits.
      if (push.deleted === true || !push.ref.startsWith('refs/heads/')) return [];
      const repository = push.repository.full_name;
      const branch = push.ref.slice('refs/heads/'.length);
      const pushedAt = push.repository.pushed_at;
      // `head_commit` repeats the last entry of `commits`: one commit event per `commits[]` entry.
      const commits: Commit[] = push.commits.map((c) => ({
        kind: 'commit',
        id: commitId(repository, c.id),
        repository,
        branch,
        sha: c.id,
        ...(c.author.username ? { authorLogin: c.author.username } : {}),
        authorName: c.author.name,
        ...(c.author.email ? { authorEmail: c.author.email } : {}),
        timestamp: utc(c.timestamp),
        isBot: isBot(settings, {
          login: c.author.username ?? undefined,
          name: c.author.name,
          email: c.author.email ?? undefined,
        }),
        ...(isRevertMessage(c.message) ? { revert: true as const } : {}),
        ...pathsOf(c),
      }));
      const record: Push = {
        kind: 'push',
        id: pushId(repository, branch, push.before, push.after),
        repository,
        branch,
        before: push.before,
        after: push.after,
        commitShas: push.commits.map((c) => c.id),
        // For push events `pushed_at` is epoch seconds.
        pushedAt: typeof pushedAt === 'number' ? utc(pushedAt * 1000) : pushedAt ? utc(pushedAt) : receivedAt,
        forced: push.forced === true,
      };
      return [...commits, record];
    }
    case 'pull_request': {
      const event = parseOrThrow(PullRequestEvent, body);
      const pr = event.pull_request;
      // Closed unmerged still carries a merge_commit_sha (the test merge): only `merged` counts.
      if (event.action !== 'closed' || pr.merged !== true || !pr.merged_at || !pr.merge_commit_sha) return [];
      const repository = event.repository.full_name;
      const labels = (pr.labels ?? []).map((l) => (typeof l === 'string' ? l : l.name));
      const headRef = pr.head.ref ?? undefined;
      return [
        {
          kind: 'pull_request',
          id: pullRequestId(repository, event.number),
          repository,
          number: event.number,
          authorLogin: pr.user.login,
          isBot: isBot(settings, { login: pr.user.login }),
          createdAt: utc(pr.created_at),
          mergedAt: utc(pr.merged_at),
          mergeCommitSha: pr.merge_commit_sha,
          baseRef: pr.base.ref,
          headSha: pr.head.sha,
          commits: pr.commits ?? 0,
          ...(labels.length > 0 ? { labels } : {}),
          ...(headRef ? { headRef } : {}),
          ...(isRevertMessage(pr.title) || headRef?.startsWith('revert-') === true ? { revert: true as const } : {}),
        } satisfies PullRequest,
      ];
    }
    case 'deployment_status': {
      const event = parseOrThrow(DeploymentStatusEvent, body);
      const state = event.deployment_status.state;
      if (!TERMINAL_DEPLOYMENT_STATES.has(state)) return [];
      const repository = event.repository.full_name;
      const service = serviceFromPayload(event.deployment.payload) ?? event.repository.name;
      const actor = event.workflow_run ? event.workflow_run.triggering_actor?.login : event.deployment.creator?.login;
      const url = event.deployment_status.target_url || event.deployment_status.log_url || undefined;
      const team = teamOf(settings, service, repository);
      return [
        {
          kind: 'deploy',
          id: deployId.github(event.deployment.id),
          source: 'github',
          service,
          environment: canonicalEnvironment(settings, event.deployment_status.environment),
          status: state === 'success' ? 'success' : 'failure',
          startedAt: utc(event.deployment.created_at),
          finishedAt: utc(event.deployment_status.created_at),
          commitSha: event.deployment.sha,
          repository,
          actor: actor ?? null,
          ...(team ? { team } : {}),
          ...(url ? { url } : {}),
          externalId: String(event.deployment.id),
        } satisfies Deploy,
      ];
    }
    case 'issues': {
      const { action, issue, label: changed, repository } = parseOrThrow(IssuesEvent, body);
      const labels = issue.labels.map((l) => (typeof l === 'string' ? l : l.name));
      const label = settings.incidents.githubLabel.toLowerCase();
      // Only issues labelled as incidents; one that loses the label is withdrawn (counted nowhere,
      // until it is labelled again: the latest update wins).
      const labelled = labels.some((l) => l.toLowerCase() === label);
      const withdrawn = !labelled && action === 'unlabeled' && changed?.name.toLowerCase() === label;
      if (!labelled && !withdrawn) return [];
      const repo = repository.full_name;
      const updatedAt = utc(issue.updated_at ?? receivedAt);
      const startedAt = utc(issue.created_at);
      const closed = issue.state === 'closed';
      const env = tagValue(labels, 'env');
      const incident: Incident = {
        kind: 'incident',
        id: incidentId('github', `${repo}#${issue.number}`),
        source: 'github',
        environment:
          env === undefined
            ? (settings.productionEnvironments[0] ?? 'production')
            : canonicalEnvironment(settings, env),
        startedAt: startedAt < updatedAt ? startedAt : updatedAt,
        state: closed ? 'resolved' : 'open',
        updatedAt,
        title: issue.title,
        url: issue.html_url,
        ...referencesIn([...labels, issue.title, issue.body]),
        ...(withdrawn ? { withdrawn: true as const } : {}),
      };
      const service = incidentService(settings, tagValue(labels, 'service') ?? settings.incidents.services[repo]);
      if (service !== undefined) incident.service = service;
      const severity = tagValue(labels, 'severity') ?? tagValue(labels, 'sev');
      if (severity !== undefined) incident.severity = severity;
      if (closed) {
        const resolvedAt = utc(issue.closed_at ?? updatedAt);
        incident.resolvedAt = resolvedAt < incident.startedAt ? incident.startedAt : resolvedAt;
      }
      return [incident];
    }
    default:
      return [];
  }
};

// ---- history from the REST API (devstats backfill) -----------------------------------------

/** Commits of a branch as `GET /repos/{owner}/{repo}/commits` lists them: with their parents. */
const CommitsPage = z.object({
  repository: z.string().min(1),
  branch: z.string().min(1),
  commits: z.array(
    z.object({
      sha: z.string().min(1),
      commit: z.object({
        message: z.string().nullish(),
        author: z.object({ name: z.string(), email: z.string().nullish(), date: z.string() }).nullish(),
        committer: z.object({ date: z.string() }).nullish(),
      }),
      author: Login.nullish(),
      parents: z.array(z.object({ sha: z.string() })),
    }),
  ),
});

/**
 * `devstats backfill github`: a page of a default branch's commits. Each is a commit on that branch
 * with its parents, which the lead-time walk follows where no push recorded the history.
 */
const normalizeGithubHistory: Normalizer = (body, _eventType, { settings }) => {
  const page = parseOrThrow(CommitsPage, body);
  return page.commits.map((c): Commit => {
    const name = c.commit.author?.name ?? c.author?.login ?? 'unknown';
    const email = c.commit.author?.email ?? undefined;
    const login = c.author?.login;
    return {
      kind: 'commit',
      id: commitId(page.repository, c.sha),
      repository: page.repository,
      branch: page.branch,
      sha: c.sha,
      ...(login ? { authorLogin: login } : {}),
      authorName: name,
      ...(email ? { authorEmail: email } : {}),
      timestamp: utc(c.commit.author?.date ?? c.commit.committer?.date ?? 0),
      isBot: isBot(settings, { login, name, email }),
      parents: c.parents.map((p) => p.sha),
      ...(isRevertMessage(c.commit.message) ? { revert: true as const } : {}),
    };
  });
};

/** GitHub's webhooks (https://docs.github.com/en/webhooks/webhook-events-and-payloads), signed with the webhook secret. */
export const github = {
  name: 'github',
  path: '/github',
  secretVariable: 'GITHUB_WEBHOOK_SECRET',
  credential: 'x-hub-signature-256',
  authenticate: hmacSignature({ header: 'X-Hub-Signature-256', algorithm: 'sha256', prefix: 'sha256=' }),
  admit: admitGithub,
  normalize: normalizeGithub,
} as const satisfies WebhookSourceShape;

/** The default branch's commits with their parents, from `devstats backfill github` only (no route reaches it). */
export const githubHistory = {
  name: 'github_history',
  normalize: normalizeGithubHistory,
} as const satisfies TopicSourceShape;
