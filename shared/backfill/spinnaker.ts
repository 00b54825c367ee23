import type { HistoryItem, HistorySource } from './core.ts';
import type { apiClient } from './http.ts';

/**
 * Spinnaker Gate: each application's pipeline executions (`GET /applications/{app}/pipelines`),
 * sent to `process` as the Echo events that announced their end, so the webhook's rules apply
 * (deploy stages, account → environment, cancellations). Gate answers one list per application.
 * Token: `SPINNAKER_GATE_TOKEN` (or `SPINNAKER_GATE_BASIC` user:password), read access to the
 * applications.
 */
export const SPINNAKER_CREDENTIAL =
  'SPINNAKER_GATE_TOKEN (or SPINNAKER_GATE_BASIC) needs read access to the application';

interface Execution {
  id: string;
  status?: string;
  endTime?: number | null;
  startTime?: number | null;
}

const ENDED = new Set(['SUCCEEDED', 'TERMINAL', 'CANCELED', 'STOPPED', 'FAILED_CONTINUE']);

export function spinnakerHistory(
  api: ReturnType<typeof apiClient>,
  gate: string,
  applications: string[],
  limit = 5000,
): HistorySource {
  return {
    name: 'spinnaker',
    credential: SPINNAKER_CREDENTIAL,
    scopes: () => Promise.resolve(applications),
    async *pages(application, _from, window) {
      const url = `${gate.replace(/\/$/, '')}/applications/${encodeURIComponent(application)}/pipelines?limit=${limit}&expand=true`;
      const executions = (await api.getJson(url)) as Execution[];
      const since = Date.parse(window.since);
      const until = Date.parse(window.until);
      const items: HistoryItem[] = executions
        .filter(
          (e) => ENDED.has(e.status ?? '') && typeof e.endTime === 'number' && e.endTime >= since && e.endTime < until,
        )
        .map((execution) => ({
          source: 'spinnaker',
          eventType: execution.status === 'SUCCEEDED' ? 'orca:pipeline:complete' : 'orca:pipeline:failed',
          deliveryId: `backfill:spinnaker:${execution.id}`,
          body: {
            eventId: `backfill:spinnaker:${execution.id}`,
            details: {
              source: 'orca',
              type: execution.status === 'SUCCEEDED' ? 'orca:pipeline:complete' : 'orca:pipeline:failed',
              application,
              created: execution.endTime,
            },
            content: { executionId: execution.id, execution: { application, ...execution } },
          },
        }));
      yield { items, next: undefined };
    },
  };
}
