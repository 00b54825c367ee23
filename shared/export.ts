import { createHash } from 'node:crypto';
import type { Deploy, DeployStatus, ShippedChange } from './events.ts';
import type { Logger } from './log.ts';
import { METRIC } from './metric-names.ts';
import { type Settings, teamOf } from './settings.ts';
import type { DatadogSink, DistributionPoint, SeriesPoint } from './sinks/datadog.ts';
import type { Store } from './store/store.ts';

/** Datadog drops points more than 1 hour old or 10 minutes in the future. */
const OLDEST_ACCEPTED_S = 3600;
const NEWEST_ACCEPTED_S = 600;
/** An event dated this far past its receipt is stored, never exported. */
export const FUTURE_TOLERANCE_MS = 10 * 60 * 1000;

export interface ExportDeps {
  store: Store;
  sink: DatadogSink;
  settings: Settings;
  logger: Logger;
  now: () => Date;
}

const epochSeconds = (iso: string) => Math.floor(Date.parse(iso) / 1000);
const seconds = (from: string, to: string) => (Date.parse(to) - Date.parse(from)) / 1000;

function accepted(timestamp: number, now: Date): boolean {
  const nowS = now.getTime() / 1000;
  return timestamp >= nowS - OLDEST_ACCEPTED_S && timestamp <= nowS + NEWEST_ACCEPTED_S;
}

/** Tags of a deploy's metrics. Never a person's name (DESIGN.md, "Datadog mapping"). */
function deployTags(deploy: Deploy): string[] {
  return [`service:${deploy.service}`, `env:${deploy.environment}`, `team:${deploy.team ?? 'none'}`];
}

function isProduction(settings: Settings, deploy: Deploy): boolean {
  return settings.productionEnvironments.includes(deploy.environment);
}

/**
 * The `devstats.deploys` count of one minute bucket for one deploy's tag set, recomputed from the
 * store: resending it is harmless, and two deploys in one second both count.
 */
async function deployCountPoint(store: Store, like: Deploy, status: DeployStatus): Promise<SeriesPoint> {
  const minute = Math.floor(Date.parse(like.finishedAt) / 60_000) * 60_000;
  const from = new Date(minute).toISOString();
  const to = new Date(minute + 60_000).toISOString();
  const deploys = await store.deploysBetween(from, to, { service: like.service, environment: like.environment });
  const count = deploys.filter(
    (d) => d.source === like.source && (d.team ?? 'none') === (like.team ?? 'none') && d.status === status,
  ).length;
  return {
    metric: METRIC.deploys,
    type: 'count',
    interval: 60,
    timestamp: minute / 1000,
    value: count,
    tags: [...deployTags(like), `source:${like.source}`, `status:${status}`],
  };
}

/** From the first failure after the previous success to this success, in production. */
async function timeToRestore(store: Store, deploy: Deploy): Promise<number | undefined> {
  const previous = await store.previousSuccessfulDeploy(deploy.service, deploy.environment, deploy.finishedAt);
  const since = previous?.finishedAt ?? new Date(0).toISOString();
  const between = await store.deploysBetween(since, deploy.finishedAt, {
    service: deploy.service,
    environment: deploy.environment,
  });
  const firstFailure = between.find((d) => d.status === 'failure' && d.id !== previous?.id);
  return firstFailure === undefined ? undefined : seconds(firstFailure.finishedAt, deploy.finishedAt);
}

/**
 * Datadog's DORA API takes ids of 16 to 128 characters of `[A-Za-z0-9_.:-]`: a deterministic id
 * that fits is sent as it is; one too short takes a `devstats:` prefix; any other, a digest.
 */
export function doraId(id: string): string {
  if (/^[A-Za-z0-9_.:-]{16,128}$/.test(id)) return id;
  const prefixed = `devstats:${id}`;
  if (/^[A-Za-z0-9_.:-]{16,128}$/.test(prefixed)) return prefixed;
  return `devstats:${createHash('sha256').update(id).digest('hex').slice(0, 40)}`;
}

function repositoryUrl(repository: string | undefined): string | undefined {
  return repository === undefined ? undefined : `https://github.com/${repository}`;
}

/**
 * Sends one stored deploy to Datadog: its count bucket (and the bucket of the report it replaced),
 * its duration and, for a production success after failures, the time to restore; the pipeline's
 * lag; and for production deploys an event and a DORA deployment. Marks it exported last, so a
 * failure part-way leaves it for `rollup` to retry.
 */
export async function exportDeploy(
  deps: ExportDeps,
  deploy: Deploy,
  delivery: { receivedAt?: string | undefined; replaced?: Deploy | undefined } = {},
): Promise<void> {
  const { store, sink, settings, logger } = deps;
  const now = deps.now();
  const receivedAt = delivery.receivedAt ?? now.toISOString();
  if (Date.parse(deploy.finishedAt) - Date.parse(receivedAt) > FUTURE_TOLERANCE_MS) {
    logger.warn('deploy dated in the future of its receipt: kept in the store, not exported', { id: deploy.id });
    await store.markDeployExported(deploy.id);
    return;
  }

  const series: SeriesPoint[] = [];
  const distributions: DistributionPoint[] = [];
  const finished = epochSeconds(deploy.finishedAt);
  const fresh = accepted(finished, now);

  const buckets: Array<[Deploy, DeployStatus]> = [[deploy, deploy.status]];
  if (delivery.replaced !== undefined) buckets.push([delivery.replaced, delivery.replaced.status]);
  for (const [like, status] of buckets) {
    const point = await deployCountPoint(store, like, status);
    if (accepted(point.timestamp, now)) series.push(point);
  }

  if (fresh && deploy.status !== 'cancelled') {
    distributions.push({
      metric: METRIC.deployDuration,
      timestamp: finished,
      values: [seconds(deploy.startedAt, deploy.finishedAt)],
      tags: [...deployTags(deploy), `status:${deploy.status}`],
    });
  }
  const production = isProduction(settings, deploy);
  if (fresh && production && deploy.status === 'success') {
    const restore = await timeToRestore(store, deploy);
    if (restore !== undefined) {
      distributions.push({
        metric: METRIC.timeToRestore,
        timestamp: finished,
        values: [restore],
        tags: deployTags(deploy),
      });
    }
  }
  if (delivery.receivedAt !== undefined) {
    distributions.push({
      metric: METRIC.pipelineLag,
      timestamp: Math.floor(now.getTime() / 1000),
      values: [Math.max(0, seconds(delivery.receivedAt, now.toISOString()))],
      tags: [`source:${deploy.source}`],
    });
  }

  if (series.length > 0) await sink.series(series);
  if (distributions.length > 0) await sink.distributions(distributions);
  if (production && deploy.status !== 'cancelled') {
    await sink.event({
      title: `Deployed ${deploy.service} to ${deploy.environment}${deploy.status === 'failure' ? ' (failed)' : ''}`,
      text: [
        deploy.commitSha ? `commit ${deploy.commitSha}` : '',
        deploy.version ? `version ${deploy.version}` : '',
        deploy.url ?? '',
      ]
        .filter((line) => line !== '')
        .join('\n'),
      timestamp: finished,
      tags: [...deployTags(deploy), `source:${deploy.source}`, `status:${deploy.status}`, 'devstats:deploy'],
      aggregationKey: deploy.id,
      alertType: deploy.status === 'success' ? 'success' : 'error',
    });
    const url = repositoryUrl(deploy.repository);
    await sink.doraDeployment({
      id: doraId(deploy.id),
      service: deploy.service,
      env: deploy.environment,
      startedAt: deploy.startedAt,
      finishedAt: deploy.finishedAt,
      ...(deploy.commitSha && url ? { commitSha: deploy.commitSha, repositoryUrl: url } : {}),
      ...(deploy.team ? { team: deploy.team } : {}),
      ...(deploy.version ? { version: deploy.version } : {}),
    });
  }
  await store.markDeployExported(deploy.id);
}

/** Lead time and pull request times, once per shipped change, then marked sent. */
export async function exportShipped(deps: ExportDeps, shipped: ShippedChange[]): Promise<void> {
  if (shipped.length === 0) return;
  const now = deps.now();
  const points: DistributionPoint[] = [];
  for (const change of shipped) {
    const timestamp = epochSeconds(change.deployedAt);
    if (!accepted(timestamp, now)) continue; // kept in the store, for reports
    const team = teamOf(deps.settings, change.service, change.repository) ?? 'none';
    const tags = [`service:${change.service}`, `env:${change.environment}`, `team:${team}`];
    points.push({ metric: METRIC.leadTime, timestamp, values: [change.leadTimeSeconds], tags });
    if (change.pullRequest !== undefined) {
      points.push({ metric: METRIC.prReviewTime, timestamp, values: [change.pullRequest.reviewSeconds], tags });
      points.push({
        metric: METRIC.prTimeToDeploy,
        timestamp,
        values: [change.pullRequest.timeToDeploySeconds],
        tags,
      });
    }
  }
  if (points.length > 0) await deps.sink.distributions(points);
  await deps.store.markShippedExported(shipped.map((s) => s.id));
}

/** How long an exporter holds its claim: far longer than an export takes, short enough for a retry soon. */
const CLAIM_MS = 2 * 60 * 1000;

/**
 * Exports each item once: it first claims the item in the store, so another exporter (another
 * instance of `process`, or `rollup`'s retry sweep) never sends the same points at the same time.
 */
export class Exporter {
  private readonly deps: ExportDeps;

  constructor(deps: ExportDeps) {
    this.deps = deps;
  }

  private claimWindow(): [string, string] {
    const now = this.deps.now().getTime();
    return [new Date(now).toISOString(), new Date(now + CLAIM_MS).toISOString()];
  }

  async deploy(deploy: Deploy, delivery: { receivedAt?: string; replaced?: Deploy } = {}): Promise<void> {
    const [now, until] = this.claimWindow();
    if (!(await this.deps.store.claimDeployExport(deploy.id, now, until))) return;
    try {
      await exportDeploy(this.deps, deploy, delivery);
    } catch (error) {
      await this.deps.store.releaseExportClaims([deploy.id], []).catch(() => undefined);
      throw error;
    }
  }

  async shipped(changes: ShippedChange[]): Promise<void> {
    if (changes.length === 0) return;
    const [now, until] = this.claimWindow();
    const claimed = new Set(
      await this.deps.store.claimShippedExport(
        changes.map((c) => c.id),
        now,
        until,
      ),
    );
    try {
      await exportShipped(
        this.deps,
        changes.filter((c) => claimed.has(c.id)),
      );
    } catch (error) {
      await this.deps.store.releaseExportClaims([], [...claimed]).catch(() => undefined);
      throw error;
    }
  }

  /** Retries exports that did not finish (a Datadog outage past the retries, a crash). */
  async retryPending(limit = 500): Promise<{ deploys: number; shipped: number }> {
    const deploys = await this.deps.store.unexportedDeploys(limit);
    for (const deploy of deploys) await this.deploy(deploy);
    const shipped = await this.deps.store.unexportedShipped(limit);
    await this.shipped(shipped);
    return { deploys: deploys.length, shipped: shipped.length };
  }
}
