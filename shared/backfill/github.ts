import type { Octokit } from '@octokit/rest';
import type { HistoryItem, HistoryPage, HistorySource, Window } from './core.ts';
import { BackfillDenied } from './core.ts';

/**
 * GitHub's history through octokit: the default branch's commits with their parents (a better
 * chain for lead time than push webhooks give), merged pull requests, and deployments with their
 * statuses (GraphQL: a hundred deployments and their statuses a request, where REST would need a
 * request per deployment). Pages follow GitHub's own links (`octokit.paginate`, GraphQL cursors).
 * Token: `GITHUB_TOKEN`, read-only: Contents, Pull requests, Deployments and Metadata (fine-grained),
 * or `repo` (classic).
 */
const GITHUB_CREDENTIAL =
  'GITHUB_TOKEN needs read access to Contents, Pull requests, Deployments and Metadata of the repository';

const KINDS = ['commits', 'pulls', 'deployments'] as const;
type Kind = (typeof KINDS)[number];

interface GraphqlDeployments {
  repository: {
    deployments: {
      pageInfo: { hasNextPage: boolean; endCursor: string | null };
      nodes: Array<{
        databaseId: number;
        commitOid: string;
        environment: string | null;
        createdAt: string;
        payload: string | null;
        creator: { login: string } | null;
        statuses: {
          nodes: Array<{ state: string; createdAt: string; logUrl: string | null; environmentUrl: string | null }>;
        };
      }>;
    };
  } | null;
}

const DEPLOYMENTS = `query ($owner: String!, $name: String!, $after: String) {
  repository(owner: $owner, name: $name) {
    deployments(first: 100, after: $after, orderBy: { field: CREATED_AT, direction: DESC }) {
      pageInfo { hasNextPage endCursor }
      nodes {
        databaseId commitOid environment createdAt payload
        creator { login }
        statuses(first: 20) { nodes { state createdAt logUrl environmentUrl } }
      }
    }
  }
}`;

const TERMINAL = new Set(['success', 'failure', 'error']);

async function denied<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const status = (error as { status?: number }).status;
    if (status === 401 || status === 403) throw new BackfillDenied(`GitHub answered ${status}: ${GITHUB_CREDENTIAL}`);
    throw error;
  }
}

/** Pages of an octokit iterator, a 401/403 turned into BackfillDenied. */
async function* guarded<T>(pages: AsyncIterable<T>): AsyncIterable<T> {
  const iterator = pages[Symbol.asyncIterator]();
  for (;;) {
    const next = await denied(() => iterator.next());
    if (next.done === true) return;
    yield next.value;
  }
}

export function githubHistory(octokit: Octokit, repositories: string[]): HistorySource {
  const branches = new Map<string, string>();
  const defaultBranch = async (owner: string, repo: string) => {
    const key = `${owner}/${repo}`;
    let branch = branches.get(key);
    if (branch === undefined) {
      branch = (await denied(() => octokit.rest.repos.get({ owner, repo }))).data.default_branch;
      branches.set(key, branch);
    }
    return branch;
  };

  async function* commits(owner: string, repo: string, from: number, window: Window): AsyncIterable<HistoryPage> {
    const branch = await defaultBranch(owner, repo);
    let page = from;
    const pages = octokit.paginate.iterator(octokit.rest.repos.listCommits, {
      owner,
      repo,
      sha: branch,
      since: window.since,
      until: window.until,
      per_page: 100,
      page,
    });
    for await (const response of guarded(pages)) {
      page++;
      const item: HistoryItem = {
        source: 'github_history',
        eventType: 'commits',
        deliveryId: `backfill:github:${owner}/${repo}:commits:${page}`,
        body: { repository: `${owner}/${repo}`, branch, commits: response.data },
      };
      yield { items: response.data.length > 0 ? [item] : [], next: String(page) };
    }
  }

  async function* pulls(owner: string, repo: string, from: number, window: Window): AsyncIterable<HistoryPage> {
    let page = from;
    const pages = octokit.paginate.iterator(octokit.rest.pulls.list, {
      owner,
      repo,
      state: 'closed',
      sort: 'updated',
      direction: 'desc',
      per_page: 100,
      page,
    });
    for await (const response of guarded(pages)) {
      page++;
      const items: HistoryItem[] = response.data
        .filter((pr) => pr.merged_at !== null && pr.merged_at >= window.since && pr.merged_at < window.until)
        .map((pr) => ({
          source: 'github',
          eventType: 'pull_request',
          deliveryId: `backfill:github:${owner}/${repo}#${pr.number}`,
          body: {
            action: 'closed',
            number: pr.number,
            repository: { full_name: `${owner}/${repo}` },
            pull_request: {
              user: { login: pr.user?.login ?? 'ghost' },
              title: pr.title,
              // Always listed by the API; a proxy or an old Enterprise server may leave it out.
              labels: Array.isArray(pr.labels) ? pr.labels.map((l) => ({ name: l.name })) : [],
              created_at: pr.created_at,
              merged: true,
              merged_at: pr.merged_at,
              merge_commit_sha: pr.merge_commit_sha,
              base: { ref: pr.base.ref },
              head: { sha: pr.head.sha, ref: pr.head.ref },
            },
          },
        }));
      yield { items, next: String(page) };
      // Newest updated first: once a page is older than the window, so is the rest.
      if (response.data.length > 0 && response.data.every((pr) => pr.updated_at < window.since)) return;
    }
  }

  /**
   * Deployments come newest first, and are handed on oldest first: each deploy then finds the one
   * before it already stored and walks back only to it, where newest first would make each the
   * service's first in turn (each walking the whole history). A scope's deployments are one step.
   */
  async function* deployments(owner: string, repo: string, window: Window): AsyncIterable<HistoryPage> {
    let after: string | null = null;
    const items: Array<HistoryItem & { at: string }> = [];
    for (;;) {
      const answer: GraphqlDeployments = await denied(() =>
        octokit.graphql<GraphqlDeployments>(DEPLOYMENTS, { owner, name: repo, after }),
      );
      const connection = answer.repository?.deployments;
      if (connection === undefined) break;
      for (const d of connection.nodes) {
        if (d.createdAt >= window.until || d.createdAt < window.since) continue;
        // The last terminal status says how it ended (later it may only have gone inactive).
        const status = [...d.statuses.nodes]
          .sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1))
          .find((s) => TERMINAL.has(s.state.toLowerCase()));
        if (status === undefined) continue;
        items.push({
          at: status.createdAt,
          source: 'github',
          eventType: 'deployment_status',
          deliveryId: `backfill:github:deployment:${d.databaseId}`,
          body: {
            deployment_status: {
              state: status.state.toLowerCase(),
              environment: d.environment ?? 'production',
              created_at: status.createdAt,
              target_url: status.environmentUrl,
              log_url: status.logUrl,
            },
            deployment: {
              id: d.databaseId,
              sha: d.commitOid,
              created_at: d.createdAt,
              creator: d.creator,
              payload: d.payload ?? undefined,
            },
            repository: { full_name: `${owner}/${repo}`, name: repo },
          },
        });
      }
      const older = connection.nodes.some((d) => d.createdAt < window.since);
      after = connection.pageInfo.endCursor;
      if (!connection.pageInfo.hasNextPage || older || after === null) break;
    }
    yield { items: items.sort((a, b) => (a.at < b.at ? -1 : 1)).map(({ at: _at, ...item }) => item), next: undefined };
  }

  return {
    name: 'github',
    credential: GITHUB_CREDENTIAL,
    scopes: () => Promise.resolve(repositories.flatMap((r) => KINDS.map((kind) => `${r} ${kind}`))),
    pages(scope, from, window) {
      const [repository, kind] = scope.split(' ') as [string, Kind];
      const [owner = '', repo = ''] = repository.split('/');
      if (kind === 'commits') return commits(owner, repo, Number(from ?? 1) || 1, window);
      if (kind === 'pulls') return pulls(owner, repo, Number(from ?? 1) || 1, window);
      return deployments(owner, repo, window);
    },
  };
}
