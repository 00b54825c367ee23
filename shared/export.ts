import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Deploy, DeployStatus, Incident, ShippedChange } from './events.ts';
import type { Logger } from './log.ts';
import { METRIC } from './metric-names.ts';
import { isProductionDeployment, isProductionIncident, linkedDeploy } from './metrics.ts';
import { knownEnvironments, type Settings, teamOf } from './settings.ts';
import {
  type DatadogSink,
  DatadogRejected,
  type DistributionPoint,
  type DoraFailure,
  exportDeadline,
  type SeriesPoint,
} from './sinks/datadog.ts';
import { type ExportItem, type ExportRef, shipOrder, type Store } from './store/store.ts';

/** Datadog drops points more than 1 hour old or 10 minutes in the future. */
const OLDEST_ACCEPTED_S = 3600;
const NEWEST_ACCEPTED_S = 600;
/** The events API takes events up to 18 hours old: older ones stay in the store and the report. */
const OLDEST_EVENT_S = 18 * 3600;
/** An event dated this far past its receipt is stored, never exported. */
export const FUTURE_TOLERANCE_MS = 10 * 60 * 1000;
/** Rounds of recount-and-resend of one count bucket before giving the rest to the next export. */
const COUNT_ROUNDS = 5;

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

/** The `env` tag: a known environment by name, any other (`pr-123`) as `other`, so it adds no metrics. */
export function envTag(settings: Settings, environment: string): string {
  return knownEnvironments(settings).has(environment) ? environment : 'other';
}

/** Tags of a deploy's metrics. Never a person's name (DESIGN.md, "Datadog mapping"). */
function deployTags(settings: Settings, deploy: Deploy): string[] {
  return [`service:${deploy.service}`, `env:${envTag(settings, deploy.environment)}`, `team:${deploy.team ?? 'none'}`];
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

// ---- count buckets ---------------------------------------------------------------------------

/** One `devstats.deploys` bucket: a minute, and the tags of the deploys counted in it. */
interface Bucket {
  minute: number;
  like: Deploy;
  status: DeployStatus;
}

/**
 * The bucket's count, recomputed from the store: every deploy of that minute with the same tags
 * (environments outside the known ones share `env:other`). Cancelled and future-dated deploys are
 * never counted.
 */
async function countPoint(deps: ExportDeps, bucket: Bucket): Promise<SeriesPoint> {
  const { settings } = deps;
  const from = new Date(bucket.minute).toISOString();
  const to = new Date(bucket.minute + 60_000).toISOString();
  const env = envTag(settings, bucket.like.environment);
  const team = bucket.like.team ?? 'none';
  // A known environment is its own tag: the store reads that service's deploys to it (an index),
  // not every deploy of the minute. The rest share `env:other`, so they are read by time alone.
  const known = knownEnvironments(settings).has(bucket.like.environment);
  const of = known ? { service: bucket.like.service, environment: bucket.like.environment } : undefined;
  const count = (await deps.store.deploysBetween(from, to, of)).filter(
    (d) =>
      d.service === bucket.like.service &&
      envTag(settings, d.environment) === env &&
      d.source === bucket.like.source &&
      (d.team ?? 'none') === team &&
      d.status === bucket.status &&
      d.futureDated !== true,
  ).length;
  return {
    metric: METRIC.deploys,
    type: 'count',
    interval: 60,
    timestamp: bucket.minute / 1000,
    value: count,
    tags: [...deployTags(settings, bucket.like), `source:${bucket.like.source}`, `status:${bucket.status}`],
  };
}

const keyOf = (p: SeriesPoint) => `${p.tags.join(',')}@${p.timestamp}`;

/**
 * Sends count buckets so the last value Datadog keeps is the store's: after each send the buckets
 * are counted again and any that changed meanwhile (another exporter, a slower read) sent again.
 * Whoever sends a stale count sees it on the recount, so a stale count never stays the last word.
 */
export async function sendCounts(deps: ExportDeps, buckets: Bucket[]): Promise<void> {
  const now = deps.now();
  const live = buckets.filter((b) => b.status !== 'cancelled' && accepted(b.minute / 1000, now));
  const tagsOf = (b: Bucket) =>
    [b.minute, b.like.service, envTag(deps.settings, b.like.environment), b.like.source, b.like.team, b.status].join(
      '|',
    );
  let pending = [...new Map(live.map((b) => [tagsOf(b), b])).values()];
  let sent = new Map<string, number>();
  for (let round = 0; round < COUNT_ROUNDS && pending.length > 0; round++) {
    const points = await Promise.all(pending.map((b) => countPoint(deps, b)));
    const changed = points.filter((p) => sent.get(keyOf(p)) !== p.value);
    if (changed.length === 0) return;
    await deps.sink.series(changed);
    sent = new Map([...sent, ...changed.map((p) => [keyOf(p), p.value] as const)]);
    pending = pending.filter((_, i) => points[i] !== undefined && changed.includes(points[i]));
  }
}

export function bucketOf(deploy: Deploy): Bucket {
  return { minute: Math.floor(Date.parse(deploy.finishedAt) / 60_000) * 60_000, like: deploy, status: deploy.status };
}

// ---- restores: failed and rolled-back production deploys --------------------------------------

const Restore = z.object({
  kind: z.literal('restore'),
  cause: z.enum(['failed', 'rolled_back']),
  failed: z.custom<Deploy>(),
  restoredBy: z.custom<Deploy>(),
});
type Restore = z.infer<typeof Restore>;

const restoreId = (cause: Restore['cause'], deploy: Deploy) =>
  `${cause === 'failed' ? 'failure' : 'rollback'}:${deploy.id}`;

function doraFailureOf(settings: Settings, cause: Restore['cause'], failed: Deploy, restoredBy?: Deploy): DoraFailure {
  const url = repositoryUrl(failed.repository);
  return {
    id: doraId(restoreId(cause, failed)),
    name: `${failed.service} ${cause === 'failed' ? 'deploy failed' : 'rolled back'} in ${failed.environment}`,
    services: [failed.service],
    env: envTag(settings, failed.environment),
    startedAt: failed.finishedAt,
    ...(restoredBy ? { finishedAt: restoredBy.finishedAt } : {}),
    ...(failed.commitSha && url ? { commitSha: failed.commitSha, repositoryUrl: url } : {}),
    ...(failed.team ? { team: failed.team } : {}),
    ...(failed.version ? { version: failed.version } : {}),
  };
}

/** The earliest successful deploy of `sha` to a deploy's service and environment, as its order. */
async function firstDeployed(store: Store, like: Deploy, sha: string | undefined): Promise<string | undefined> {
  if (sha === undefined || like.repository === undefined) return undefined;
  const orders = (await store.shippingDeploysAt(like.repository, sha))
    .filter((d) => d.service === like.service && d.environment === like.environment)
    .map(shipOrder)
    .sort();
  return orders[0];
}

/** Whether `next` went back to a sha first deployed before `deploy`'s: `deploy` was rolled back. */
async function rolledBack(store: Store, deploy: Deploy, next: Deploy): Promise<boolean> {
  if (deploy.commitSha === undefined || next.commitSha === undefined || deploy.commitSha === next.commitSha)
    return false;
  const [mine, theirs] = await Promise.all([
    firstDeployed(store, deploy, deploy.commitSha),
    firstDeployed(store, deploy, next.commitSha),
  ]);
  return mine !== undefined && theirs !== undefined && theirs < mine;
}

/**
 * The restores one production deploy takes part in, as the failure or as what restored service:
 * a failed deploy and the next success; a success and the failures since the previous success;
 * a rollback and the deploy it rolled back (and this deploy, if a later one already rolled it back).
 */
async function restoresOf(store: Store, deploy: Deploy): Promise<Restore[]> {
  const { service, environment } = deploy;
  const restores: Restore[] = [];
  const next = await store.nextSuccessfulDeploy(service, environment, deploy.finishedAt);
  if (deploy.status === 'failure') {
    if (next !== undefined) restores.push({ kind: 'restore', cause: 'failed', failed: deploy, restoredBy: next });
    return restores;
  }
  const previous = await store.previousSuccessfulDeploy(service, environment, deploy.finishedAt);
  const since = previous?.finishedAt ?? new Date(Date.parse(deploy.finishedAt) - 56 * 86_400_000).toISOString();
  for (const failed of await store.deploysBetween(since, deploy.finishedAt, { service, environment })) {
    if (failed.status === 'failure' && failed.futureDated !== true)
      restores.push({ kind: 'restore', cause: 'failed', failed, restoredBy: deploy });
  }
  if (previous !== undefined && (await rolledBack(store, previous, deploy)))
    restores.push({ kind: 'restore', cause: 'rolled_back', failed: previous, restoredBy: deploy });
  if (next !== undefined && (await rolledBack(store, deploy, next)))
    restores.push({ kind: 'restore', cause: 'rolled_back', failed: deploy, restoredBy: next });
  return restores;
}

/** A restore's closed DORA failure (sent again harmlessly), then its time to restore, once. */
async function exportRestore(deps: ExportDeps, restore: Restore, id: string): Promise<void> {
  const { settings, sink } = deps;
  await sink.doraFailure(doraFailureOf(settings, restore.cause, restore.failed, restore.restoredBy));
  await sendRestoreTime(deps, id, restore.failed.finishedAt, restore.restoredBy.finishedAt, [
    ...deployTags(settings, restore.failed),
    'cause:deploy',
  ]);
}

/**
 * One time-to-restore value, once: marked in doubt while in flight (see markExportsInDoubt), and
 * kept in the store only when older than Datadog takes.
 */
async function sendRestoreTime(deps: ExportDeps, id: string, from: string, to: string, tags: string[]): Promise<void> {
  const finished = epochSeconds(to);
  if (!accepted(finished, deps.now())) return;
  const ref = [{ kind: 'item' as const, id }];
  await deps.store.markExportsInDoubt(ref);
  try {
    await deps.sink.distributions([
      { metric: METRIC.timeToRestore, timestamp: finished, values: [Math.max(0, seconds(from, to))], tags },
    ]);
  } catch (error) {
    await deps.store.clearExportsInDoubt(ref).catch(() => undefined);
    throw error;
  }
}

// ---- incidents ------------------------------------------------------------------------------

const IncidentExport = z.object({
  kind: z.literal('incident'),
  /** `opened`: the dashboard event of a new incident; `state`: its DORA failure as it stands now; `restore`: its time to restore. */
  part: z.enum(['opened', 'state', 'restore']),
  incident: z.custom<Incident>(),
});
type IncidentExport = z.infer<typeof IncidentExport>;

/**
 * What an incident sends, each once, by deterministic ids, so a redelivery or a stale update adds
 * nothing: an event when it is first seen open; its DORA failure as of its latest update (an upsert
 * under one DORA id: a resolution closes it, a reopening opens it again); once resolved, its time
 * to restore (the first resolution's: Datadog cannot take a value back, the store and the report
 * keep the last). Incidents outside production send nothing.
 */
export function incidentItems(settings: Settings, incident: Incident): ExportItem[] {
  if (!isProductionIncident(settings, incident)) return [];
  const items: ExportItem[] = [];
  const item = (id: string, at: string, part: IncidentExport['part']) =>
    items.push({ id, at, body: { kind: 'incident', part, incident } satisfies IncidentExport });
  if (incident.state === 'open') item(`incident-opened:${incident.id}`, incident.startedAt, 'opened');
  item(`incident:${incident.id}@${incident.updatedAt}`, incident.updatedAt, 'state');
  if (incident.resolvedAt !== undefined) item(`incident-restore:${incident.id}`, incident.resolvedAt, 'restore');
  return items;
}

/** The deploy an incident is tied to, from the deploys the store holds around its start. */
async function linkedDeployOf(deps: ExportDeps, incident: Incident): Promise<Deploy | undefined> {
  const start = Date.parse(incident.startedAt);
  const back = incident.sha === undefined ? deps.settings.incidentWindowHours * 3600_000 : 30 * 86_400_000;
  const [named, around] = await Promise.all([
    incident.deployId === undefined ? undefined : deps.store.deploy(incident.deployId),
    deps.store.deploysBetween(
      new Date(start - back).toISOString(),
      new Date(start + (incident.sha === undefined ? 1 : 86_400_000)).toISOString(),
    ),
  ]);
  return linkedDeploy(deps.settings, incident, named === undefined ? around : [named, ...around]);
}

async function exportIncident(deps: ExportDeps, exported: IncidentExport, id: string): Promise<void> {
  const { settings, sink, store } = deps;
  // Sent as it stands now: an older update retried after a newer one went never takes it back.
  const incident = (await store.incident(exported.incident.id)) ?? exported.incident;
  const now = deps.now();
  const linked = await linkedDeployOf(deps, incident);
  const service = incident.service ?? linked?.service;
  const team = (service === undefined ? undefined : teamOf(settings, service)) ?? linked?.team;
  const tags = [
    `service:${service ?? 'none'}`,
    `env:${envTag(settings, incident.environment)}`,
    `team:${team ?? 'none'}`,
    `source:${incident.source}`,
  ];
  const event = async (what: string, timestamp: number, alertType: 'success' | 'error') => {
    if (timestamp < now.getTime() / 1000 - OLDEST_EVENT_S) return; // older than the events API takes
    await sink.event({
      title: `Incident ${what}: ${incident.title ?? incident.id}`,
      text: [
        service ? `service ${service}` : 'no service named',
        linked ? `tied to deploy ${linked.id}${linked.commitSha ? ` (${linked.commitSha})` : ''}` : 'tied to no deploy',
        incident.url ?? '',
      ]
        .filter((line) => line !== '')
        .join('\n'),
      timestamp,
      tags: [...tags, 'devstats:incident'],
      aggregationKey: incident.id,
      alertType,
    });
  };
  switch (exported.part) {
    case 'opened':
      await event('opened', epochSeconds(incident.startedAt), 'error');
      return;
    case 'state': {
      const url = repositoryUrl(linked?.repository);
      await sink.doraFailure({
        id: doraId(`incident:${incident.id}`),
        name: incident.title ?? `${service ?? 'unknown service'} incident`,
        services: service === undefined ? [] : [service],
        env: envTag(settings, incident.environment),
        startedAt: incident.startedAt,
        ...(incident.resolvedAt ? { finishedAt: incident.resolvedAt } : {}),
        ...(linked?.commitSha && url ? { commitSha: linked.commitSha, repositoryUrl: url } : {}),
        ...(team ? { team } : {}),
        ...(linked?.version ? { version: linked.version } : {}),
        ...(incident.severity ? { severity: incident.severity } : {}),
      });
      if (incident.resolvedAt !== undefined) await event('resolved', epochSeconds(incident.resolvedAt), 'success');
      return;
    }
    case 'restore':
      if (incident.resolvedAt !== undefined)
        await sendRestoreTime(deps, id, incident.startedAt, incident.resolvedAt, [
          ...tags.slice(0, 3),
          'cause:incident',
        ]);
  }
}

// ---- a deploy's own export -----------------------------------------------------------------

/**
 * The parts of a deploy's export, in the steps they go in (see exportDeploy): the count first (the
 * restores' read after it must be the fresh one), then the event and the DORA record side by side
 * (each request a round trip of its own; neither reads what the other writes), then the
 * distributions, last.
 */
const DEPLOY_STEPS = [['series'], ['event', 'dora'], ['distributions']] as const;
type DeployPart = (typeof DEPLOY_STEPS)[number][number];

/**
 * Sends one stored deploy to Datadog, part by part: its count bucket (and the bucket of the report
 * it replaced); for production deploys an event and, side by side with it, a DORA deployment (and a
 * DORA failure when it failed); then its duration and the pipeline's lag. Each part is sent once: `done` names those an
 * earlier export already sent, and when a part fails the ones that went are recorded, so the
 * redelivery sends only the rest (distributions go last: Datadog adds their values up, so they must
 * never go twice). The restores it takes part in are recorded to send once each; the deploy is
 * marked exported last, so a failure part-way leaves it for `rollup` to retry.
 */
export async function exportDeploy(
  deps: ExportDeps,
  deploy: Deploy,
  delivery: { receivedAt?: string | undefined; replaced?: Deploy | undefined } = {},
  done: ReadonlySet<string> = new Set(),
): Promise<ExportItem[]> {
  const { store, sink, settings, logger } = deps;
  const now = deps.now();
  const receivedAt = delivery.receivedAt;
  if (
    deploy.futureDated === true ||
    (receivedAt !== undefined && Date.parse(deploy.finishedAt) - Date.parse(receivedAt) > FUTURE_TOLERANCE_MS)
  ) {
    logger.warn('deploy dated in the future of its receipt: kept in the store, not exported', { id: deploy.id });
    await store.markDeployExported(deploy.id);
    return [];
  }

  const finished = epochSeconds(deploy.finishedAt);
  const production = isProductionDeployment(settings, deploy);
  const tags = deployTags(settings, deploy);
  // Looked up when first needed, after the count: that read is the one that must be fresh.
  let restores: Restore[] | undefined;
  const restoresNow = async () => (restores ??= production ? await restoresOf(store, deploy) : []);
  const parts: Record<DeployPart, () => Promise<void>> = {
    series: async () => {
      const buckets = [bucketOf(deploy)];
      if (delivery.replaced !== undefined) buckets.push(bucketOf(delivery.replaced));
      await sendCounts(deps, buckets);
    },
    event: async () => {
      // Too old for the events API: the DORA record still goes.
      if (!production || finished < now.getTime() / 1000 - OLDEST_EVENT_S) return;
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
        tags: [...tags, `source:${deploy.source}`, `status:${deploy.status}`, 'devstats:deploy'],
        aggregationKey: deploy.id,
        alertType: deploy.status === 'success' ? 'success' : 'error',
      });
    },
    dora: async () => {
      if (!production) return;
      const url = repositoryUrl(deploy.repository);
      await sink.doraDeployment({
        id: doraId(deploy.id),
        service: deploy.service,
        env: envTag(settings, deploy.environment),
        startedAt: deploy.startedAt,
        finishedAt: deploy.finishedAt,
        ...(deploy.commitSha && url ? { commitSha: deploy.commitSha, repositoryUrl: url } : {}),
        ...(deploy.team ? { team: deploy.team } : {}),
        ...(deploy.version ? { version: deploy.version } : {}),
      });
      // A failure not restored yet is open in Datadog until its restore closes it (same id).
      if (deploy.status === 'failure' && !(await restoresNow()).some((r) => r.failed.id === deploy.id))
        await sink.doraFailure(doraFailureOf(settings, 'failed', deploy));
    },
    distributions: async () => {
      const distributions: DistributionPoint[] = [];
      if (accepted(finished, now) && deploy.status !== 'cancelled') {
        distributions.push({
          metric: METRIC.deployDuration,
          timestamp: finished,
          values: [seconds(deploy.startedAt, deploy.finishedAt)],
          tags: [...tags, `status:${deploy.status}`],
        });
      }
      if (receivedAt !== undefined) {
        distributions.push({
          metric: METRIC.pipelineLag,
          timestamp: Math.floor(now.getTime() / 1000),
          values: [Math.max(0, seconds(receivedAt, now.toISOString()))],
          tags: [`source:${deploy.source}`],
        });
      }
      if (distributions.length > 0) await sink.distributions(distributions);
    },
  };
  const sent = new Set(done);
  for (const step of DEPLOY_STEPS) {
    const due = step.filter((part) => !sent.has(part));
    if (due.length === 0) continue;
    // Datadog adds distribution values up: recorded as sent before they go, so an exporter that
    // dies with the request in flight never has them sent twice (a value may be missing instead).
    const additive = due.includes('distributions');
    if (additive) await store.markDeployParts(deploy.id, [...sent, ...due]);
    const outcomes = await Promise.allSettled(due.map((part) => parts[part]()));
    outcomes.forEach((outcome, i) => {
      const part = due[i];
      if (outcome.status === 'fulfilled' && part !== undefined) sent.add(part);
    });
    const failed = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failed !== undefined) {
      if (additive) for (const part of due) sent.delete(part);
      if (additive || sent.size > done.size) await store.markDeployParts(deploy.id, [...sent]).catch(() => undefined);
      throw failed.reason;
    }
  }
  // Recorded before the deploy is marked exported, so a crash between the two loses no restore.
  const items = (await restoresNow()).map(restoreItem);
  if (items.length > 0) await store.putExportItems(items);
  await store.markDeployExported(deploy.id);
  return items;
}

function restoreItem(restore: Restore): ExportItem {
  return { id: restoreId(restore.cause, restore.failed), at: restore.restoredBy.finishedAt, body: restore };
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
    const tags = [`service:${change.service}`, `env:${envTag(deps.settings, change.environment)}`, `team:${team}`];
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
  const refs = shipped.map((s) => ({ kind: 'shipped' as const, id: s.id }));
  if (points.length > 0) {
    // Marked in doubt while the values are in flight: never sent twice (see markExportsInDoubt).
    await deps.store.markExportsInDoubt(refs);
    try {
      await deps.sink.distributions(points);
    } catch (error) {
      await deps.store.clearExportsInDoubt(refs).catch(() => undefined);
      throw error;
    }
  }
  await deps.store.markShippedExported(shipped.map((s) => s.id));
}

/**
 * How long an export may take (every attempt of every request in it, `exportDeadline`), and how
 * long an exporter's claim lasts: longer than any export it covers, so a redelivery that finds the
 * first export still running never sends the same points, and short enough for a retry soon after
 * an exporter died.
 */
export const EXPORT_BUDGET_MS = 30 * 1000;
export const CLAIM_MS = 45 * 1000;

/**
 * Exports each item once: it first claims the item in the store, so another exporter (another
 * instance of `process`, or `rollup`'s retry sweep) never sends the same points at the same time.
 * What Datadog refuses for good (a 400) is parked with its reason (`devstats events --failed`),
 * sent again only on `devstats replay`, and blocks nothing else.
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

  /** Runs one export within its time budget. */
  private budgeted<T>(work: () => Promise<T>): Promise<T> {
    return exportDeadline.run(Date.now() + EXPORT_BUDGET_MS, work);
  }

  private async park(refs: ExportRef[], error: DatadogRejected): Promise<void> {
    await this.deps.store.parkExports(refs, error.message, this.deps.now().toISOString());
    this.deps.logger.error('Datadog refused an export for good: parked (devstats events --failed; devstats replay)', {
      kind: refs[0]?.kind,
      ids: refs.map((r) => r.id).join(','),
      status: error.status,
    });
  }

  async deploy(deploy: Deploy, delivery: { receivedAt?: string; replaced?: Deploy } = {}): Promise<void> {
    const [now, until] = this.claimWindow();
    const done = await this.deps.store.claimDeployExport(deploy.id, now, until);
    if (done === undefined) return;
    if (done.includes('distributions'))
      this.deps.logger.warn('distribution values in doubt (an exporter died sending them): not sent again', {
        id: deploy.id,
      });
    let items: ExportItem[];
    try {
      items = await this.budgeted(() => exportDeploy(this.deps, deploy, delivery, new Set(done)));
    } catch (error) {
      if (error instanceof DatadogRejected) {
        await this.park([{ kind: 'deploy', id: deploy.id }], error);
        return;
      }
      await this.deps.store.releaseExportClaims([deploy.id], []).catch(() => undefined);
      throw error;
    }
    await this.items(items);
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
    const mine = changes.filter((c) => claimed.has(c.id));
    try {
      await this.budgeted(() => exportShipped(this.deps, mine));
    } catch (error) {
      if (!(error instanceof DatadogRejected)) {
        await this.deps.store.releaseExportClaims([], [...claimed]).catch(() => undefined);
        throw error;
      }
      // One change in the batch is refused: each alone, and only the refused ones parked.
      for (const change of mine) {
        try {
          await this.budgeted(() => exportShipped(this.deps, [change]));
        } catch (single) {
          if (!(single instanceof DatadogRejected)) {
            await this.deps.store.releaseExportClaims([], [change.id]).catch(() => undefined);
            throw single;
          }
          await this.park([{ kind: 'shipped', id: change.id }], single);
        }
      }
    }
  }

  /**
   * An incident as stored now: what it sends is recorded first (so a failure here leaves it to the
   * rollup's retry), then sent; each part once, whatever number of times this is called.
   */
  async incident(incident: Incident): Promise<void> {
    const items = incidentItems(this.deps.settings, incident);
    if (items.length === 0) return;
    await this.deps.store.putExportItems(items);
    await this.items(items);
  }

  /** Restores and other facts recorded to send once. */
  async items(items: ExportItem[]): Promise<void> {
    if (items.length === 0) return;
    const [now, until] = this.claimWindow();
    const claimed = await this.deps.store.claimExportItems(
      items.map((i) => i.id),
      now,
      until,
    );
    for (const item of items.filter((i) => claimed.includes(i.id))) {
      try {
        const restore = Restore.safeParse(item.body);
        if (restore.success) await this.budgeted(() => exportRestore(this.deps, restore.data, item.id));
        const incident = IncidentExport.safeParse(item.body);
        if (incident.success) await this.budgeted(() => exportIncident(this.deps, incident.data, item.id));
        await this.deps.store.markItemsExported([item.id]);
      } catch (error) {
        if (error instanceof DatadogRejected) {
          await this.park([{ kind: 'item', id: item.id }], error);
          continue;
        }
        await this.deps.store.releaseExportClaims([], [], [item.id]).catch(() => undefined);
        throw error;
      }
    }
  }

  /**
   * Retries exports that did not finish (a Datadog outage past the retries, a crash). One that
   * fails does not stop the others: every one is tried, then the first failure is thrown.
   */
  async retryPending(limit = 500): Promise<{ deploys: number; shipped: number }> {
    const failures: unknown[] = [];
    const attempt = async (work: () => Promise<void>) => {
      try {
        await work();
      } catch (error) {
        failures.push(error);
      }
    };
    const deploys = await this.deps.store.unexportedDeploys(limit);
    for (const deploy of deploys) await attempt(() => this.deploy(deploy));
    const shipped = await this.deps.store.unexportedShipped(limit);
    await attempt(() => this.shipped(shipped));
    const items = await this.deps.store.unexportedItems(limit);
    await attempt(() => this.items(items));
    if (failures.length > 0) throw failures[0];
    return { deploys: deploys.length, shipped: shipped.length };
  }
}
