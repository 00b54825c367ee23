import type { HistoryItem, HistorySource } from './core.ts';
import type { apiClient } from './http.ts';

/**
 * CircleCI API v2: each project's pipelines (`GET /project/{slug}/pipeline`, page tokens) and their
 * workflows (`GET /pipeline/{id}/workflow`), sent to `process` as `workflow-completed` webhooks, so
 * the `circleci.deploys` rules decide which are deploys. Token: `CIRCLECI_TOKEN`, a personal API
 * token of a user who can read the projects.
 */
export const CIRCLECI_CREDENTIAL = 'CIRCLECI_TOKEN needs read access to the project (a personal API token)';

interface Page<T> {
  items: T[];
  next_page_token?: string | null;
}
interface Pipeline {
  id: string;
  created_at: string;
  vcs?: { revision?: string; target_repository_url?: string; origin_repository_url?: string };
}
interface Workflow {
  id: string;
  name: string;
  status: string;
  created_at: string;
  stopped_at?: string | null;
  pipeline_number?: number;
}

const FINISHED = new Set(['success', 'failed', 'error', 'canceled']);

export function circleciHistory(api: ReturnType<typeof apiClient>, baseUrl: string, projects: string[]): HistorySource {
  const base = baseUrl.replace(/\/$/, '');
  return {
    name: 'circleci',
    credential: CIRCLECI_CREDENTIAL,
    scopes: () => Promise.resolve(projects),
    async *pages(slug, from, window) {
      let token: string | undefined = from;
      for (;;) {
        const answer = (await api.getJson(
          `${base}/project/${slug}/pipeline${token ? `?page-token=${encodeURIComponent(token)}` : ''}`,
        )) as Page<Pipeline>;
        const items: HistoryItem[] = [];
        for (const pipeline of answer.items) {
          if (pipeline.created_at < window.since || pipeline.created_at >= window.until) continue;
          const workflows = (await api.getJson(`${base}/pipeline/${pipeline.id}/workflow`)) as Page<Workflow>;
          for (const workflow of workflows.items.filter((w) => FINISHED.has(w.status))) {
            items.push({
              source: 'circleci',
              eventType: 'workflow-completed',
              deliveryId: `backfill:circleci:${workflow.id}`,
              body: {
                id: `backfill:circleci:${workflow.id}`,
                type: 'workflow-completed',
                happened_at: workflow.stopped_at ?? workflow.created_at,
                project: { name: slug.split('/').at(-1) ?? slug, slug },
                workflow: {
                  id: workflow.id,
                  name: workflow.name,
                  status: workflow.status,
                  created_at: workflow.created_at,
                  stopped_at: workflow.stopped_at ?? null,
                  url: `https://app.circleci.com/pipelines/${slug}/${workflow.pipeline_number ?? ''}/workflows/${workflow.id}`,
                },
                pipeline: {
                  id: pipeline.id,
                  vcs: {
                    revision: pipeline.vcs?.revision,
                    target_repository_url: pipeline.vcs?.target_repository_url ?? pipeline.vcs?.origin_repository_url,
                  },
                },
              },
            });
          }
        }
        const older = answer.items.some((p) => p.created_at < window.since);
        token = answer.next_page_token ?? undefined;
        yield { items, next: older ? undefined : token };
        if (older || token === undefined) return;
      }
    },
  };
}
