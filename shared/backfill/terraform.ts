import type { HistoryItem, HistorySource } from './core.ts';
import type { apiClient } from './http.ts';

/**
 * HCP Terraform / Terraform Enterprise: the organisation's workspaces and their runs
 * (`GET /api/v2/workspaces/:id/runs`, JSON:API pages), sent to `process` as the run notifications
 * they would have been: applied runs are deploys by the same workspace rules. The API allows 30
 * requests a second; the client keeps under it and waits when told. Token: `TFC_TOKEN`, a team or
 * user token that can read runs of the workspaces.
 */
export const TERRAFORM_CREDENTIAL = 'TFC_TOKEN needs read access to runs of the workspaces (a team or user token)';

interface JsonApiPage<T> {
  data: T[];
  meta?: { pagination?: { 'next-page'?: number | null } };
}
interface Workspace {
  id: string;
  attributes: { name: string };
}
interface Run {
  id: string;
  attributes: { status: string; 'created-at': string; 'status-timestamps'?: Record<string, string> };
}

const FINAL = new Set(['applied', 'errored', 'canceled', 'force_canceled', 'discarded']);

export function terraformHistory(
  api: ReturnType<typeof apiClient>,
  options: { baseUrl: string; organization: string },
): HistorySource {
  const base = options.baseUrl.replace(/\/$/, '');
  return {
    name: 'terraform',
    credential: TERRAFORM_CREDENTIAL,
    async scopes() {
      const scopes: string[] = [];
      for (let page: number | null | undefined = 1; page;) {
        const answer = (await api.getJson(
          `${base}/api/v2/organizations/${encodeURIComponent(options.organization)}/workspaces?page%5Bsize%5D=100&page%5Bnumber%5D=${page}`,
        )) as JsonApiPage<Workspace>;
        for (const w of answer.data) scopes.push(`${w.attributes.name} ${w.id}`);
        page = answer.meta?.pagination?.['next-page'];
      }
      return scopes;
    },
    async *pages(scope, from, window) {
      const [name = '', id = ''] = scope.split(' ');
      for (let page: number | null | undefined = Number(from ?? 1) || 1; page;) {
        const answer = (await api.getJson(
          `${base}/api/v2/workspaces/${encodeURIComponent(id)}/runs?page%5Bsize%5D=100&page%5Bnumber%5D=${page}`,
        )) as JsonApiPage<Run>;
        const items: HistoryItem[] = answer.data
          .filter(
            (r) =>
              FINAL.has(r.attributes.status) &&
              r.attributes['created-at'] >= window.since &&
              r.attributes['created-at'] < window.until,
          )
          .map((run) => {
            const status = run.attributes.status;
            const at =
              run.attributes['status-timestamps']?.[`${status.replace('_', '-')}-at`] ?? run.attributes['created-at'];
            return {
              source: 'terraform',
              eventType: 'run:completed',
              deliveryId: `${run.id}:${status}`,
              body: {
                payload_version: 1,
                run_id: run.id,
                run_url: `${base}/app/${options.organization}/workspaces/${name}/runs/${run.id}`,
                run_created_at: run.attributes['created-at'],
                run_created_by: null,
                workspace_name: name,
                notifications: [{ trigger: 'run:completed', run_status: status, run_updated_at: at }],
              },
            };
          });
        const next = answer.meta?.pagination?.['next-page'];
        // Newest first: a page reaching past the window's start ends the walk.
        const older = answer.data.some((r) => r.attributes['created-at'] < window.since);
        yield { items, next: next && !older ? String(next) : undefined };
        page = older ? undefined : next;
      }
    },
  };
}
