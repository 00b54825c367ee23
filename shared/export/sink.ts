import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * What the exporter sends and the sink delivers: the points, events and DORA records of DESIGN.md's
 * Datadog mapping, the sink's interface, and how it fails. No Datadog client here: its one importer
 * is `datadog-api.ts`.
 */

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
  /** Takes back a DORA failure sent earlier (an incident withdrawn); one never sent is no error. */
  withdrawDoraFailure(id: string): Promise<void>;
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
