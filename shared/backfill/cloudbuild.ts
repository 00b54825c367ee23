import type { CloudBuildClient } from '@google-cloud/cloudbuild';
import { BackfillDenied, type HistoryItem, type HistorySource } from './core.ts';

/**
 * Cloud Build: the project's builds (`@google-cloud/cloudbuild`, `projects.builds.list`), sent to
 * `process` as the Build resources Cloud Build publishes on `cloud-builds`, so the
 * `cloudbuild.deploys` rules decide which are deploys. Credentials: Application Default Credentials
 * with `roles/cloudbuild.builds.viewer` on the project.
 */
const CLOUDBUILD_CREDENTIAL =
  'the Application Default Credentials need roles/cloudbuild.builds.viewer on the project (GOOGLE_CLOUD_PROJECT)';

/** Build.Status, as numbers when the client decodes protobuf, as names when it does not. */
const STATUS = [
  'STATUS_UNKNOWN',
  'QUEUED',
  'WORKING',
  'SUCCESS',
  'FAILURE',
  'INTERNAL_ERROR',
  'TIMEOUT',
  'CANCELLED',
  '',
  'EXPIRED',
  'PENDING',
];

type Timestamp =
  { seconds?: number | string | { toString(): string } | null; nanos?: number | null } | string | null | undefined;

function iso(time: Timestamp): string | undefined {
  if (time === null || time === undefined) return undefined;
  if (typeof time === 'string') return time;
  const seconds = Number(time.seconds?.toString() ?? 0);
  return new Date(seconds * 1000 + Math.floor((time.nanos ?? 0) / 1e6)).toISOString();
}

interface Build {
  id?: string | null;
  status?: number | string | null;
  createTime?: Timestamp;
  startTime?: Timestamp;
  finishTime?: Timestamp;
  logUrl?: string | null;
  tags?: string[] | null;
  substitutions?: Record<string, string> | null;
}

export function cloudbuildHistory(client: CloudBuildClient, projectId: string): HistorySource {
  return {
    name: 'cloudbuild',
    credential: CLOUDBUILD_CREDENTIAL,
    scopes: () => Promise.resolve([projectId]),
    async *pages(project, from, window) {
      let pageToken = from;
      for (;;) {
        let builds: Build[];
        let next: { pageToken?: string | null } | null;
        try {
          [builds, next] = (await client.listBuilds(
            {
              projectId: project,
              pageSize: 100,
              filter: `create_time>="${window.since}" AND create_time<"${window.until}"`,
              ...(pageToken ? { pageToken } : {}),
            },
            { autoPaginate: false },
          )) as unknown as [Build[], { pageToken?: string | null } | null];
        } catch (error) {
          const code = (error as { code?: number }).code;
          // gRPC PERMISSION_DENIED (7), UNAUTHENTICATED (16), or their HTTP statuses.
          if (code === 7 || code === 16 || code === 401 || code === 403)
            throw new BackfillDenied(`Cloud Build refused: ${CLOUDBUILD_CREDENTIAL}`);
          throw error;
        }
        const items: HistoryItem[] = builds
          .filter((b) => b.id)
          .map((b) => {
            const status = typeof b.status === 'number' ? STATUS[b.status] : b.status;
            return {
              source: 'cloudbuild',
              eventType: status ?? 'STATUS_UNKNOWN',
              deliveryId: `backfill:cloudbuild:${b.id}`,
              body: {
                id: b.id,
                status,
                createTime: iso(b.createTime),
                startTime: iso(b.startTime),
                finishTime: iso(b.finishTime),
                logUrl: b.logUrl ?? undefined,
                tags: b.tags ?? [],
                substitutions: b.substitutions ?? {},
              },
            };
          });
        pageToken = next?.pageToken ?? undefined;
        yield { items, next: pageToken };
        if (!pageToken) return;
      }
    },
  };
}
