import type { BusMessage } from '../../shared/bus/bus.ts';

/**
 * Deliveries as `process` receives them from `ingest`: GitHub push and pull_request webhooks in
 * GitHub's documented shapes (the fields DevStats reads), and `/deployments` bodies. For tests
 * that tell a history and check what DevStats makes of it, in any arrival order.
 */
export const REPO = 'acme/billing';
export const ZERO = '0'.repeat(40);
/** A readable name (`a1`, `h2`) as a 40-hex sha, so every normaliser takes it. */
export const sha = (name: string): string => Buffer.from(name).toString('hex').padEnd(40, '0').slice(0, 40);
/** The name back from a sha made by `sha`. */
export const nameOf = (hex: string): string => Buffer.from(hex.replace(/(00)+$/, ''), 'hex').toString();

const RECEIVED = '2026-11-22T12:00:00.000Z';

export interface PushedCommit {
  name: string;
  at: string;
  login?: string;
  authorName?: string;
  email?: string;
  /** The files it changed, as the push lists them (modified); absent: the push lists none. */
  paths?: string[];
}

export function pushMessage(
  before: string,
  after: string,
  commits: PushedCommit[],
  options: { branch?: string; forced?: boolean; repository?: string; pushedAt?: string } = {},
): BusMessage {
  const repository = options.repository ?? REPO;
  const body = {
    ref: `refs/heads/${options.branch ?? 'main'}`,
    before: before === ZERO ? ZERO : sha(before),
    after: sha(after),
    forced: options.forced ?? false,
    repository: {
      full_name: repository,
      name: repository.split('/')[1],
      pushed_at: Math.floor(Date.parse(options.pushedAt ?? commits.at(-1)?.at ?? RECEIVED) / 1000),
    },
    commits: commits.map((c) => ({
      id: sha(c.name),
      timestamp: c.at,
      ...(c.paths === undefined ? {} : { added: [], modified: c.paths, removed: [] }),
      author: {
        name: c.authorName ?? c.login ?? 'Bob',
        email: c.email ?? `${c.login ?? 'bob'}@example.com`,
        ...(c.login === undefined && c.authorName !== undefined ? {} : { username: c.login ?? 'bob' }),
      },
    })),
    head_commit: commits.length > 0 ? { id: sha(after) } : null,
  };
  return github('push', body, `push-${options.branch ?? 'main'}-${before}-${after}`);
}

export function pullRequestMessage(
  number: number,
  mergeSha: string,
  createdAt: string,
  mergedAt: string,
  options: { login?: string; repository?: string } = {},
): BusMessage {
  const body = {
    action: 'closed',
    number,
    repository: { full_name: options.repository ?? REPO },
    pull_request: {
      user: { login: options.login ?? 'carol' },
      created_at: createdAt,
      merged: true,
      merged_at: mergedAt,
      merge_commit_sha: sha(mergeSha),
      base: { ref: 'main' },
      head: { sha: sha(`${mergeSha}-head`) },
      commits: 2,
    },
  };
  return github('pull_request', body, `pr-${number}`);
}

function github(eventType: string, body: unknown, deliveryId: string): BusMessage {
  return {
    data: Buffer.from(JSON.stringify(body)),
    attributes: { source: 'github', eventType, deliveryId, receivedAt: RECEIVED },
  };
}

export interface DeployOptions {
  service?: string;
  environment?: string;
  status?: 'success' | 'failure' | 'cancelled';
  repository?: string;
  receivedAt?: string;
}

/** A `/deployments` post; `at` undefined is a deploy without a sha (a Terraform apply). */
export function deployMessage(id: string, at: string | undefined, finishedAt: string, options: DeployOptions = {}) {
  const body = {
    service: options.service ?? 'billing',
    environment: options.environment ?? 'production',
    status: options.status ?? 'success',
    startedAt: new Date(Date.parse(finishedAt) - 120_000).toISOString(),
    finishedAt,
    ...(at === undefined ? {} : { commitSha: sha(at), repository: options.repository ?? REPO }),
    id,
  };
  return {
    data: Buffer.from(JSON.stringify(body)),
    attributes: {
      source: 'ci',
      eventType: 'deployment',
      deliveryId: `ci:${body.service}:${id}`,
      receivedAt: options.receivedAt ?? RECEIVED,
    },
  } satisfies BusMessage;
}

/** `2026-11-20T<hh>:<mm>:00.000Z`, for histories told within one day. */
export const at = (hour: number, minute = 0): string => new Date(Date.UTC(2026, 10, 20, hour, minute)).toISOString();
