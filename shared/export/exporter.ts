import type { Deploy, Incident, ShippedChange } from '../events/model.ts';
import { teamOf } from '../events/settings.ts';
import { isProductionDeployment } from '../metrics/definitions.ts';
import { type Restore, restoresOf } from '../metrics/failures.ts';
import type { ExportItem, ExportRef } from '../store/store.ts';
import { bucketOf, sendCounts } from './counts.ts';
import { DatadogRejected, type DistributionPoint, exportDeadline } from './sink.ts';
import { exportIncident, IncidentExport, incidentItems } from './incidents.ts';
import {
  accepted,
  deployTags,
  doraFailureOf,
  doraId,
  envTag,
  epochSeconds,
  type ExportDeps,
  FUTURE_TOLERANCE_MS,
  OLDEST_EVENT_S,
  repositoryUrl,
  seconds,
  versionOf,
} from './mapping.ts';
import { METRIC } from './metric-names.ts';
import { earlierStages, promotionTimes, stageArrivals } from '../metrics/promotion.ts';
import { exportRestore, RestoreItem, restoreItem } from './restores.ts';

/**
 * The exactly-once export (DESIGN.md, "Datadog mapping"): each stored fact claimed before it is
 * sent, sent part by part, recorded as sent; what Datadog refuses for good parked.
 */

// ---- a deploy's own export -----------------------------------------------------------------

/**
 * The parts of a deploy's export, in the steps they go in (see exportDeploy): the count first (the
 * restores' read after it must be the fresh one), then the event and the DORA record side by side
 * (each request a round trip of its own; neither reads what the other writes), then the
 * distributions, last. A deploy that did not fail sends all four side by side: only a failure's
 * DORA record reads the restores, and the distributions are recorded as sent on their own.
 */
const DEPLOY_STEPS = [['series'], ['event', 'dora'], ['distributions']] as const;
const UNFAILED_DEPLOY_STEPS = [['series', 'event', 'dora', 'distributions']] as const;
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
async function exportDeploy(
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
  let restores: Promise<Restore[]> | undefined;
  const restoresNow = () => (restores ??= production ? restoresOf(store, deploy) : Promise.resolve([]));
  /** The parts sent before this export (`done`) or by its earlier steps. */
  const sent = new Set(done);
  const sentBefore = () => [...sent];
  /** Whether this step recorded its distributions as sent before sending them. */
  let premarked: boolean | undefined;
  const parts: Record<DeployPart, () => Promise<void>> = {
    series: async () => {
      const buckets = [bucketOf(deploy)];
      if (delivery.replaced !== undefined) buckets.push(bucketOf(delivery.replaced));
      await sendCounts(deps, buckets);
      // The restores are read from here on, after the count (as they must be), beside what is still
      // going; a failed read is thrown where they are needed.
      restoresNow().catch(() => undefined);
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
        // Datadog finds rollbacks by version (a redeploy of an earlier one): the sha stands in for none.
        ...(versionOf(deploy) ? { version: versionOf(deploy) } : {}),
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
      if (production && accepted(finished, now)) {
        for (const p of await promotionsOf(deps, deploy))
          distributions.push({
            metric: METRIC.promotionTime,
            timestamp: finished,
            values: [p.seconds],
            tags: [
              `service:${deploy.service}`,
              `team:${deploy.team ?? 'none'}`,
              `from:${p.from}`,
              `to:${envTag(settings, deploy.environment)}`,
            ],
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
      if (distributions.length === 0) return;
      // Datadog adds distribution values up: recorded as sent before they go, so an exporter that
      // dies with the request in flight never has them sent twice (a value may be missing instead).
      premarked = true;
      await store.markDeployParts(deploy.id, [...sentBefore(), 'distributions']);
      await sink.distributions(distributions);
    },
  };
  for (const step of deploy.status === 'failure' ? DEPLOY_STEPS : UNFAILED_DEPLOY_STEPS) {
    const due = step.filter((part) => !sent.has(part));
    if (due.length === 0) continue;
    premarked = false;
    const outcomes = await Promise.allSettled(due.map((part) => parts[part]()));
    outcomes.forEach((outcome, i) => {
      const part = due[i];
      if (outcome.status === 'fulfilled' && part !== undefined) sent.add(part);
    });
    const failed = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failed !== undefined) {
      // What went is recorded (and distributions whose request failed are no longer marked sent).
      if (premarked || sent.size > done.size) await store.markDeployParts(deploy.id, [...sent]).catch(() => undefined);
      throw failed.reason;
    }
  }
  // Recorded before the deploy is marked exported, so a crash between the two loses no restore.
  const items = (await restoresNow()).map(restoreItem);
  if (items.length > 0) await store.putExportItems(items);
  await store.markDeployExported(deploy.id);
  return items;
}

/** How far back a stage deploy is looked for: a change staged a month before production is rare. */
const STAGE_LOOKBACK_MS = 30 * 86_400_000;

/** The deploys of a service to its earlier stages (and its own environment) around a production deploy. */
async function stageDeploys(deps: ExportDeps, service: string, environment: string, from: string, to: string) {
  const stages = [...earlierStages(deps.settings, environment), environment];
  const end = new Date(Date.parse(to) + 1).toISOString();
  return (
    await Promise.all(stages.map((e) => deps.store.deploysBetween(from, end, { service, environment: e })))
  ).flat();
}

/** A production deploy's promotion times, when stages are configured. */
async function promotionsOf(deps: ExportDeps, deploy: Deploy): Promise<Array<{ from: string; seconds: number }>> {
  if (earlierStages(deps.settings, deploy.environment).length === 0 || deploy.commitSha === undefined) return [];
  const from = new Date(Date.parse(deploy.finishedAt) - STAGE_LOOKBACK_MS).toISOString();
  return promotionTimes(
    deps.settings,
    deploy,
    await stageDeploys(deps, deploy.service, deploy.environment, from, deploy.finishedAt),
  );
}

/** Each shipped change's lead time to every earlier stage it reached (`devstats.lead_time {env:<stage>}`). */
async function stageLeadTimes(
  deps: ExportDeps,
  shipped: readonly ShippedChange[],
): Promise<Map<string, Array<{ stage: string; leadTimeSeconds: number }>>> {
  const out = new Map<string, Array<{ stage: string; leadTimeSeconds: number }>>();
  const byDeploy = new Map<string, ShippedChange[]>();
  for (const s of shipped) {
    if (earlierStages(deps.settings, s.environment).length === 0) continue;
    byDeploy.set(s.deployId, [...(byDeploy.get(s.deployId) ?? []), s]);
  }
  for (const [deployId, changes] of byDeploy) {
    const [production, together] = await Promise.all([deps.store.deploy(deployId), deps.store.shippedBy(deployId)]);
    const first = changes.map((c) => c.committedAt).sort()[0] ?? changes[0]?.deployedAt ?? '';
    const last = changes[0]?.deployedAt ?? first;
    const service = changes[0]?.service ?? '';
    const deploys = await stageDeploys(deps, service, changes[0]?.environment ?? '', first, last);
    for (const change of changes)
      out.set(change.id, stageArrivals(deps.settings, change, production?.commitSha, together, deploys));
  }
  return out;
}

/** Lead time and pull request times, once per shipped change, then marked sent. */
async function exportShipped(deps: ExportDeps, shipped: ShippedChange[]): Promise<void> {
  if (shipped.length === 0) return;
  const now = deps.now();
  const points: DistributionPoint[] = [];
  const stages = await stageLeadTimes(deps, shipped);
  for (const change of shipped) {
    const timestamp = epochSeconds(change.deployedAt);
    if (!accepted(timestamp, now)) continue; // kept in the store, for reports
    const team = teamOf(deps.settings, change.service, change.repository) ?? 'none';
    const tags = [`service:${change.service}`, `env:${envTag(deps.settings, change.environment)}`, `team:${team}`];
    points.push({ metric: METRIC.leadTime, timestamp, values: [change.leadTimeSeconds], tags });
    // Its lead time to each earlier stage it reached: the same metric, that stage's env.
    for (const arrival of stages.get(change.id) ?? [])
      points.push({
        metric: METRIC.leadTime,
        timestamp,
        values: [arrival.leadTimeSeconds],
        tags: [`service:${change.service}`, `env:${envTag(deps.settings, arrival.stage)}`, `team:${team}`],
      });
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

  /** Until when a claim taken now lasts: `putDeploy`'s `claimUntil`, for a deploy exported right after. */
  claimUntil(): string {
    return this.claimWindow()[1];
  }

  /**
   * A stored deploy's export. `claimed`: it was claimed as it was created (putDeploy's
   * `claimUntil`), moments ago, so nothing of it was sent yet.
   */
  async deploy(
    deploy: Deploy,
    delivery: { receivedAt?: string; replaced?: Deploy } = {},
    options: { claimed?: boolean } = {},
  ): Promise<void> {
    const [now, until] = this.claimWindow();
    const done = options.claimed === true ? [] : await this.deps.store.claimDeployExport(deploy.id, now, until);
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
        const restore = RestoreItem.safeParse(item.body);
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
