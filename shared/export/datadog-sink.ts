// The client's documented usage passes plain objects for its model classes (it serialises them).
/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment */
import { AsyncLocalStorage } from 'node:async_hooks';
import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.ts';

/**
 * A CommonJS module's exports, from a dynamic import: Node gives them as named exports and as
 * `default`, esbuild's split bundle (build/bundle.js) only as `default`.
 */
const commonjs = <T>(module: { default: T }): T => module.default;

/** A count or gauge point (`POST /api/v1/series`). Timestamps are epoch seconds. */
export interface SeriesPoint {
  metric: string;
  type: 'count' | 'gauge';
  /** Seconds a count covers (60 for per-minute buckets). */
  interval?: number;
  timestamp: number;
  value: number;
  tags: string[];
}

/** Values of a distribution at one time (`POST /api/v1/distribution_points`); Datadog adds them up. */
export interface DistributionPoint {
  metric: string;
  timestamp: number;
  values: number[];
  tags: string[];
}

/** A dashboard overlay event (`POST /api/v1/events`). */
export interface DeployEvent {
  title: string;
  text: string;
  timestamp: number;
  tags: string[];
  aggregationKey: string;
  alertType: 'success' | 'error';
}

/** A DORA deployment (`POST /api/v2/dora/deployment`), keyed by the deploy's deterministic id. */
export interface DoraDeployment {
  id: string;
  service: string;
  env: string;
  startedAt: string;
  finishedAt: string;
  commitSha?: string;
  repositoryUrl?: string;
  team?: string;
  version?: string;
}

/**
 * A DORA failure (`POST /api/v2/dora/failure`): a failed or rolled-back production deploy, sent
 * again with `finishedAt` once service is restored (the same id updates it).
 */
export interface DoraFailure {
  id: string;
  name: string;
  services: string[];
  env: string;
  startedAt: string;
  finishedAt?: string;
  commitSha?: string;
  repositoryUrl?: string;
  team?: string;
  version?: string;
  severity?: string;
}

/** Every request to Datadog goes through this: one implementation speaks to the API, one writes files. */
export interface DatadogSink {
  series(points: SeriesPoint[]): Promise<void>;
  distributions(points: DistributionPoint[]): Promise<void>;
  event(event: DeployEvent): Promise<void>;
  doraDeployment(deployment: DoraDeployment): Promise<void>;
  doraFailure(failure: DoraFailure): Promise<void>;
  /** How many HTTP requests (or file writes) the sink made: for the batching benchmark. */
  readonly requests: number;
}

/** Datadog did not take a request within the retries: `process` throws, so Pub/Sub redelivers. */
export class DatadogUnavailable extends Error {
  override name = 'DatadogUnavailable';
}

/**
 * Datadog refused the request for what it holds (400, 413, 422): sending it again fails the same
 * way, so the exporter parks the item instead of retrying it, and everything else goes on.
 */
export class DatadogRejected extends Error {
  override name = 'DatadogRejected';
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

/** Statuses that say the request itself is wrong, not Datadog or the key. */
const REJECTED = new Set([400, 413, 422]);

/**
 * The time an export may take, across every attempt of every request in it: an exporter runs its
 * export inside `exportDeadline.run(deadline, …)` and each request stops retrying at the deadline,
 * so a claim held a little longer than the budget outlives any export it covers.
 */
export const exportDeadline = new AsyncLocalStorage<number>();
/** How the sink reaches Datadog (or, without `apiKey`, the files it writes instead). */
export interface DatadogConfig {
  apiKey: string | undefined;
  appKey: string | undefined;
  site: string;
  /** Base URL override (`DD_API_URL`), for proxies and tests. */
  apiUrl: string | undefined;
  timeoutMs: number;
  retries: number;
  backoffMs: number;
  dataDir: string;
}

/** Series per request: far under the API's 500 kB compressed payload limit for these short tag sets. */
const MAX_SERIES_PER_REQUEST = 1000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `fetch` with the transport policy the client lacks: a timeout per attempt, and retries with
 * exponential backoff on network errors, timeouts, 429 (waiting for `X-RateLimit-Reset` when the
 * API names it) and 5xx. 400/401/403/413 are never retried: they would fail again.
 */
export function policyFetch(options: { timeoutMs: number; retries: number; backoffMs: number; logger: Logger }) {
  return async (url: string, init: RequestInit): Promise<Response> => {
    const deadline = exportDeadline.getStore() ?? Number.POSITIVE_INFINITY;
    for (let attempt = 0; ; attempt++) {
      const wait = options.backoffMs * 2 ** attempt;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('the export ran out of its time budget');
      try {
        const response = await fetch(url, {
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
class ApiSink implements DatadogSink {
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
 * Without `DD_API_KEY` (embedded mode): every request the API sink would send, appended as one JSON
 * line to `DEVSTATS_DATA_DIR/datadog/<endpoint>.jsonl`, and summarised in the log.
 */
class FileSink implements DatadogSink {
  requests = 0;
  private readonly dir: string;
  private readonly logger: Logger;

  constructor(dataDir: string, logger: Logger) {
    this.dir = join(dataDir, 'datadog');
    this.logger = logger;
  }

  private async write(endpoint: string, body: unknown, summary: string): Promise<void> {
    this.requests++;
    await mkdir(this.dir, { recursive: true });
    await appendFile(join(this.dir, `${endpoint}.jsonl`), JSON.stringify(body) + '\n');
    this.logger.info('Datadog request written to file (no DD_API_KEY)', { endpoint, summary });
  }

  series(points: SeriesPoint[]): Promise<void> {
    return this.write(
      'series',
      { series: points },
      `${points.length} points: ${[...new Set(points.map((p) => p.metric))].join(', ')}`,
    );
  }

  distributions(points: DistributionPoint[]): Promise<void> {
    return this.write(
      'distribution_points',
      { series: points },
      `${points.length} series: ${[...new Set(points.map((p) => p.metric))].join(', ')}`,
    );
  }

  event(event: DeployEvent): Promise<void> {
    return this.write('events', event, event.title);
  }

  doraDeployment(deployment: DoraDeployment): Promise<void> {
    return this.write('dora_deployment', deployment, `${deployment.service} ${deployment.env} ${deployment.id}`);
  }

  doraFailure(failure: DoraFailure): Promise<void> {
    return this.write('dora_failure', failure, `${failure.services.join(',')} ${failure.env} ${failure.id}`);
  }
}

/** Of several points for one (metric, tags, second), only the last counts: send only it. */
function latestPerSecond(points: SeriesPoint[]): SeriesPoint[] {
  const latest = new Map<string, SeriesPoint>();
  for (const p of points) {
    const key = `${p.metric}|${p.tags.join(',')}|${p.timestamp}`;
    latest.delete(key); // re-inserted last, so the order of what remains follows the newest
    latest.set(key, p);
  }
  return [...latest.values()];
}

/** How long distribution points wait for company before their request goes. */
const DISTRIBUTION_LINGER_MS = 20;

interface Waiting<P> {
  points: P[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Points from deliveries handled at the same time share requests: each call waits for the
 * batch it joined, so a failed request still fails every delivery in it (and each is redelivered).
 */
export class BatchingSink implements DatadogSink {
  private readonly inner: DatadogSink;
  private readonly waiting = {
    series: [] as Array<Waiting<SeriesPoint>>,
    distributions: [] as Array<Waiting<DistributionPoint>>,
  };
  private readonly scheduled = { series: false, distributions: false };
  private readonly lingerMs: number;
  private lastJoin = 0;
  /** Series requests go one at a time, in order: Datadog keeps the last count received per second. */
  private seriesInOrder: Promise<unknown> = Promise.resolve();

  constructor(inner: DatadogSink, options: { lingerMs?: number } = {}) {
    this.inner = inner;
    this.lingerMs = options.lingerMs ?? DISTRIBUTION_LINGER_MS;
  }

  get requests(): number {
    return this.inner.requests;
  }

  series(points: SeriesPoint[]): Promise<void> {
    return this.join(this.waiting.series, points);
  }

  distributions(points: DistributionPoint[]): Promise<void> {
    return this.join(this.waiting.distributions, points);
  }

  event(event: DeployEvent): Promise<void> {
    return this.inner.event(event);
  }

  doraDeployment(deployment: DoraDeployment): Promise<void> {
    return this.inner.doraDeployment(deployment);
  }

  doraFailure(failure: DoraFailure): Promise<void> {
    return this.inner.doraFailure(failure);
  }

  private join<P>(queue: Array<Waiting<P>>, points: P[]): Promise<void> {
    return new Promise((resolve, reject) => {
      queue.push({ points, resolve, reject });
      if (queue === (this.waiting.series as unknown)) {
        if (this.scheduled.series) return;
        this.scheduled.series = true;
        // After the I/O callbacks already due: deliveries finishing together land in one batch.
        setImmediate(() => {
          this.scheduled.series = false;
          this.flush(this.waiting.series.splice(0), (batch) => {
            const sent = this.seriesInOrder.then(() => this.inner.series(latestPerSecond(batch)));
            this.seriesInOrder = sent.catch(() => undefined);
            return sent;
          });
        });
      } else {
        // Distributions come last in an export, after its event and DORA requests: they linger for
        // the deliveries handled alongside, whose requests end at other moments, until none joined
        // for `lingerMs` (and never more than ten times that).
        this.lastJoin = Date.now();
        if (this.scheduled.distributions) return;
        this.scheduled.distributions = true;
        const firstJoin = this.lastJoin;
        const wait = () => {
          const quiet = Date.now() - this.lastJoin >= this.lingerMs;
          if (!quiet && Date.now() - firstJoin < 10 * this.lingerMs) {
            setTimeout(wait, this.lingerMs - (Date.now() - this.lastJoin));
            return;
          }
          this.scheduled.distributions = false;
          this.flush(this.waiting.distributions.splice(0), (batch) => this.inner.distributions(batch));
        };
        setTimeout(wait, this.lingerMs);
      }
    });
  }

  private flush<P>(batch: Array<Waiting<P>>, send: (points: P[]) => Promise<void>): void {
    if (batch.length === 0) return;
    send(batch.flatMap((w) => w.points)).then(
      () => {
        for (const w of batch) w.resolve();
      },
      (error: unknown) => {
        // Refused for what it holds: each delivery's points alone, so only the bad one fails.
        if (error instanceof DatadogRejected && batch.length > 1) {
          for (const w of batch) send(w.points).then(w.resolve, w.reject);
          return;
        }
        for (const w of batch) w.reject(error);
      },
    );
  }
}

export function createDatadogSink(config: DatadogConfig, logger: Logger): DatadogSink {
  if (config.apiKey === undefined) return new BatchingSink(new FileSink(config.dataDir, logger));
  const sink = new ApiSink(config, logger);
  sink.warm();
  return new BatchingSink(sink);
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
