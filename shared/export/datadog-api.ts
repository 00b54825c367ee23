// The client's documented usage passes plain objects for its model classes (it serialises them).
/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment */
import type { Logger } from '../log.ts';
import { type FetchAnswer, type FetchInit, httpFetch } from './http-fetch.ts';
import {
  type DatadogConfig,
  DatadogRejected,
  type DatadogSink,
  DatadogUnavailable,
  type DeployEvent,
  type DistributionPoint,
  type DoraDeployment,
  type DoraFailure,
  exportDeadline,
  type SeriesPoint,
} from './sink.ts';

/**
 * A CommonJS module's exports, from a dynamic import: Node gives them as named exports and as
 * `default`, esbuild's split bundle (build/bundle.js) only as `default`.
 */
const commonjs = <T>(module: { default: T }): T => module.default;

/** Statuses that say the request itself is wrong, not Datadog or the key. */
const REJECTED = new Set([400, 413, 422]);

/** Series per request: far under the API's 500 kB compressed payload limit for these short tag sets. */
const MAX_SERIES_PER_REQUEST = 1000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `fetch` (httpFetch: node:http, not undici) with the transport policy the client lacks: a timeout per attempt, and retries with
 * exponential backoff on network errors, timeouts, 429 (waiting for `X-RateLimit-Reset` when the
 * API names it) and 5xx. 400/401/403/413 are never retried: they would fail again.
 */
export function policyFetch(options: { timeoutMs: number; retries: number; backoffMs: number; logger: Logger }) {
  return async (url: string, init: FetchInit): Promise<FetchAnswer> => {
    const deadline = exportDeadline.getStore() ?? Number.POSITIVE_INFINITY;
    for (let attempt = 0; ; attempt++) {
      const wait = options.backoffMs * 2 ** attempt;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('the export ran out of its time budget');
      try {
        const response = await httpFetch(url, {
          ...init,
          signal: AbortSignal.timeout(Math.max(1, Math.min(options.timeoutMs, left))),
        });
        const retryable = response.status === 429 || response.status >= 500;
        if (!retryable || attempt >= options.retries) return response;
        const reset = Number(response.headers.get('x-ratelimit-reset'));
        // The reset header is in seconds; bounded so a bad header cannot stall a function.
        const pause = response.status === 429 && reset > 0 ? Math.min(reset, 60) * 1000 : wait;
        if (Date.now() + pause >= deadline) return response;
        await response.arrayBuffer();
        options.logger.warn('Datadog answered a retryable status; retrying', {
          status: response.status,
          attempt: attempt + 1,
        });
        await sleep(pause);
      } catch (error) {
        if (attempt >= options.retries || Date.now() + wait >= deadline) throw error;
        options.logger.warn('Datadog request failed; retrying', { error: String(error), attempt: attempt + 1 });
        await sleep(wait);
      }
    }
  };
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The real API through `@datadog/datadog-api-client`, imported lazily and only in the parts used. */
export class ApiSink implements DatadogSink {
  requests = 0;
  private readonly config: DatadogConfig;
  private readonly logger: Logger;
  private apis: ReturnType<typeof this.load> | undefined;

  constructor(config: DatadogConfig, logger: Logger) {
    this.config = config;
    this.logger = logger;
  }

  /** Starts loading the client in the background, so the first export does not wait for it. */
  warm(): void {
    void (this.apis ??= this.load()).catch(() => undefined);
  }

  private async load() {
    // The package's index pulls in every API (over a second to import); these are the three used.
    const [common, v1Metrics, v1Events, v2Dora] = await Promise.all([
      import('@datadog/datadog-api-client/dist/packages/datadog-api-client-common/index.js').then(commonjs),
      import('@datadog/datadog-api-client/dist/packages/datadog-api-client-v1/apis/MetricsApi.js').then(commonjs),
      import('@datadog/datadog-api-client/dist/packages/datadog-api-client-v1/apis/EventsApi.js').then(commonjs),
      import('@datadog/datadog-api-client/dist/packages/datadog-api-client-v2/apis/DORAMetricsApi.js').then(commonjs),
    ]);
    const configuration = common.createConfiguration({
      authMethods: {
        ...(this.config.apiKey ? { apiKeyAuth: this.config.apiKey } : {}),
        ...(this.config.appKey ? { appKeyAuth: this.config.appKey } : {}),
      },
      ...(this.config.apiUrl
        ? { baseServer: new common.BaseServerConfiguration(this.config.apiUrl.replace(/\/$/, ''), {}) }
        : {}),
      fetch: policyFetch({ ...this.config, logger: this.logger }),
      enableRetry: false, // policyFetch retries, with a timeout per attempt and network errors included
    });
    if (!this.config.apiUrl) common.setServerVariables(configuration, { site: this.config.site });
    return {
      metrics: new v1Metrics.MetricsApi(configuration),
      events: new v1Events.EventsApi(configuration),
      dora: new v2Dora.DORAMetricsApi(configuration),
    };
  }

  private async call(what: string, work: (apis: Awaited<ReturnType<typeof this.load>>) => Promise<unknown>) {
    const apis = await (this.apis ??= this.load());
    this.requests++;
    try {
      await work(apis);
    } catch (error) {
      const code = (error as { code?: number }).code;
      const message = `Datadog ${what} failed${code ? ` with ${code}` : ''}: ${(error as Error).message}`;
      if (code !== undefined && REJECTED.has(code)) throw new DatadogRejected(message.slice(0, 500), code);
      throw new DatadogUnavailable(message);
    }
  }

  async series(points: SeriesPoint[]): Promise<void> {
    for (const batch of chunks(points, MAX_SERIES_PER_REQUEST)) {
      await this.call('series', (apis) =>
        apis.metrics.submitMetrics({
          contentEncoding: 'gzip',
          body: {
            series: batch.map((p) => ({
              metric: p.metric,
              type: p.type,
              ...(p.interval ? { interval: p.interval } : {}),
              points: [[p.timestamp, p.value]],
              tags: p.tags,
            })),
          },
        }),
      );
    }
  }

  async distributions(points: DistributionPoint[]): Promise<void> {
    for (const batch of chunks(points, MAX_SERIES_PER_REQUEST)) {
      await this.call('distribution points', (apis) =>
        apis.metrics.submitDistributionPoints({
          contentEncoding: 'deflate',
          body: { series: batch.map((p) => ({ metric: p.metric, points: [[p.timestamp, p.values]], tags: p.tags })) },
        }),
      );
    }
  }

  event(event: DeployEvent): Promise<void> {
    return this.call('event', (apis) =>
      apis.events.createEvent({
        body: {
          title: event.title,
          text: event.text,
          dateHappened: event.timestamp,
          tags: event.tags,
          aggregationKey: event.aggregationKey,
          alertType: event.alertType,
          sourceTypeName: 'devstats',
        },
      }),
    );
  }

  doraDeployment(d: DoraDeployment): Promise<void> {
    const nanos = (iso: string) => Date.parse(iso) * 1_000_000;
    return this.call('DORA deployment', (apis) =>
      apis.dora.createDORADeployment({
        body: {
          data: {
            attributes: {
              id: d.id,
              service: d.service,
              env: d.env,
              startedAt: nanos(d.startedAt),
              finishedAt: nanos(d.finishedAt),
              ...(d.commitSha && d.repositoryUrl
                ? { git: { commitSha: d.commitSha, repositoryUrl: d.repositoryUrl } }
                : {}),
              ...(d.team ? { team: d.team } : {}),
              ...(d.version ? { version: d.version } : {}),
            },
          },
        },
      }),
    );
  }

  withdrawDoraFailure(id: string): Promise<void> {
    return this.call('DORA failure withdrawal', (apis) =>
      apis.dora.deleteDORAFailure({ failureId: id }).catch((error: unknown) => {
        // Never sent, or already taken back: what the withdrawal wanted.
        if ((error as { code?: number }).code !== 404) throw error;
      }),
    );
  }

  doraFailure(f: DoraFailure): Promise<void> {
    const nanos = (iso: string) => Date.parse(iso) * 1_000_000;
    return this.call('DORA failure', (apis) =>
      apis.dora.createDORAFailure({
        body: {
          data: {
            attributes: {
              id: f.id,
              name: f.name,
              services: f.services,
              env: f.env,
              startedAt: nanos(f.startedAt),
              ...(f.finishedAt ? { finishedAt: nanos(f.finishedAt) } : {}),
              ...(f.commitSha && f.repositoryUrl
                ? { git: { commitSha: f.commitSha, repositoryUrl: f.repositoryUrl } }
                : {}),
              ...(f.team ? { team: f.team } : {}),
              ...(f.version ? { version: f.version } : {}),
              ...(f.severity ? { severity: f.severity } : {}),
            },
          },
        },
      }),
    );
  }
}

/**
 * Creates or updates a dashboard through the API, found by its title (so pushing twice updates it).
 * For `devstats dashboard push`: teams that do not manage Datadog with Terraform.
 */
export async function pushDashboard(
  config: DatadogConfig,
  logger: Logger,
  dashboard: Record<string, unknown> & { title: string },
): Promise<{ action: 'created' | 'updated'; id: string; url: string | undefined }> {
  if (!config.apiKey || !config.appKey)
    throw new DatadogUnavailable('DD_API_KEY and DD_APP_KEY are both needed to manage a dashboard');
  const [common, dashboards, serializer] = await Promise.all([
    import('@datadog/datadog-api-client/dist/packages/datadog-api-client-common/index.js').then(commonjs),
    import('@datadog/datadog-api-client/dist/packages/datadog-api-client-v1/apis/DashboardsApi.js').then(commonjs),
    import('@datadog/datadog-api-client/dist/packages/datadog-api-client-v1/models/ObjectSerializer.js').then(commonjs),
  ]);
  const configuration = common.createConfiguration({
    authMethods: { apiKeyAuth: config.apiKey, appKeyAuth: config.appKey },
    ...(config.apiUrl ? { baseServer: new common.BaseServerConfiguration(config.apiUrl.replace(/\/$/, ''), {}) } : {}),
    fetch: policyFetch({ ...config, logger }),
    enableRetry: false,
  });
  if (!config.apiUrl) common.setServerVariables(configuration, { site: config.site });
  const api = new dashboards.DashboardsApi(configuration);
  // The JSON file is in the API's (snake_case) form; the client wants its model.
  const body = serializer.ObjectSerializer.deserialize(dashboard, 'Dashboard', '') as Parameters<
    typeof api.createDashboard
  >[0]['body'];
  try {
    const existing = (await api.listDashboards({ filterShared: false })).dashboards?.find(
      (d) => d.title === dashboard.title,
    );
    if (existing?.id !== undefined) {
      const updated = await api.updateDashboard({ dashboardId: existing.id, body });
      return { action: 'updated', id: existing.id, url: updated.url };
    }
    const created = await api.createDashboard({ body });
    return { action: 'created', id: created.id ?? '', url: created.url };
  } catch (error) {
    throw new DatadogUnavailable(`Datadog dashboard push failed: ${(error as Error).message}`);
  }
}

/**
 * Whether Datadog takes the API key (`GET /api/v1/validate`): true, false (403), or the error
 * that kept it from answering.
 */
export async function validateApiKey(config: DatadogConfig, logger: Logger): Promise<boolean | Error> {
  if (!config.apiKey) return false;
  const [common, authentication] = await Promise.all([
    import('@datadog/datadog-api-client/dist/packages/datadog-api-client-common/index.js').then(commonjs),
    import('@datadog/datadog-api-client/dist/packages/datadog-api-client-v1/apis/AuthenticationApi.js').then(commonjs),
  ]);
  const configuration = common.createConfiguration({
    authMethods: { apiKeyAuth: config.apiKey },
    ...(config.apiUrl ? { baseServer: new common.BaseServerConfiguration(config.apiUrl.replace(/\/$/, ''), {}) } : {}),
    fetch: policyFetch({ ...config, retries: 0, logger }),
    enableRetry: false,
  });
  if (!config.apiUrl) common.setServerVariables(configuration, { site: config.site });
  try {
    return (await new authentication.AuthenticationApi(configuration).validate()).valid === true;
  } catch (error) {
    if ((error as { code?: unknown }).code === 403) return false;
    return error instanceof Error ? error : new Error(String(error));
  }
}
