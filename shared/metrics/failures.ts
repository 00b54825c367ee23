import type { Deploy, Incident } from '../events/model.ts';
import type { Settings } from '../events/settings.ts';
import { shipOrder, type EventStore } from '../store/store.ts';
import {
  byFinish,
  deployOfTeam,
  incidentLinks,
  isProductionDeployment,
  productionDeploymentsIn,
  type TeamScope,
  windowEndingOn,
  within,
} from './definitions.ts';

/**
 * The instability rules of DESIGN.md, once: which production deploys failed, which were rolled
 * back, and which deploy restored service after each. The report, the live view and `rollup` ask
 * them of a history (`deployFailures`); the export asks them of one deploy as it arrives, from the
 * store (`restoresOf`). Both apply the same `rolledBackBy` and the same "the next successful
 * deploy restores", so Datadog's DORA failures and the report's figures cannot disagree.
 */

/**
 * The one rollback rule: `next` (the next successful deploy of the service there) went to a sha
 * first deployed before `deploy`'s sha was. A redeploy of the same sha, or a deploy of a newer one,
 * is no rollback; the rollback itself is no failure. `firstDeployed` gives the order
 * (`shipOrder`) of a sha's earliest successful deploy there.
 */
function rolledBackBy(
  deploy: Pick<Deploy, 'commitSha'>,
  next: Pick<Deploy, 'commitSha'>,
  firstDeployed: (sha: string) => string | undefined,
): boolean {
  if (deploy.commitSha === undefined || next.commitSha === undefined || deploy.commitSha === next.commitSha)
    return false;
  const mine = firstDeployed(deploy.commitSha);
  const theirs = firstDeployed(next.commitSha);
  return mine !== undefined && theirs !== undefined && theirs < mine;
}

// ---- over a history (the report, the live view, rollup) -------------------------------------

/** A production deploy that failed, or was rolled back, and the deploy that restored service. */
export interface DeployFailure {
  deploy: Deploy;
  cause: 'failed' | 'rolled_back';
  /** The next successful deploy of the service there (for a rollback, the rollback itself). */
  restoredBy?: Deploy;
}

/**
 * The failed changes among production deploys, per service and environment: each deploy that
 * failed, and each successful one rolled back (the next successful deploy went to a sha first
 * deployed before this deploy's sha was; the rollback itself is no failure). Each deploy once.
 */
function deployFailures(settings: Settings, scope: TeamScope, history: readonly Deploy[]): DeployFailure[] {
  const byTarget = new Map<string, Deploy[]>();
  for (const d of history) {
    if (!isProductionDeployment(settings, d) || !deployOfTeam(settings, scope, d)) continue;
    const key = `${d.service}\n${d.environment}`;
    const list = byTarget.get(key);
    if (list === undefined) byTarget.set(key, [d]);
    else list.push(d);
  }
  const failures: DeployFailure[] = [];
  for (const deploys of byTarget.values()) {
    deploys.sort(byFinish);
    const successes = deploys.filter((d) => d.status === 'success');
    const firstDeployed = new Map<string, string>();
    for (const d of successes)
      if (d.commitSha !== undefined && !firstDeployed.has(d.commitSha)) firstDeployed.set(d.commitSha, shipOrder(d));
    let s = 0; // the first success after the deploy in hand
    for (const d of deploys) {
      for (
        let candidate = successes[s];
        candidate !== undefined && byFinish(candidate, d) <= 0;
        candidate = successes[s]
      )
        s++;
      const next = successes[s];
      if (d.status === 'failure') failures.push({ deploy: d, cause: 'failed', ...(next ? { restoredBy: next } : {}) });
      else if (next !== undefined && rolledBackBy(d, next, (sha) => firstDeployed.get(sha)))
        failures.push({ deploy: d, cause: 'rolled_back', restoredBy: next });
    }
  }
  return failures.sort((a, b) => byFinish(a.deploy, b.deploy));
}

/** The deploys that rolled another back: each the restore of a rolled-back deploy (deployment rework). */
export function rollbackDeploys(settings: Settings, scope: TeamScope, history: readonly Deploy[]): Set<string> {
  return new Set(
    deployFailures(settings, scope, history).flatMap((f) =>
      f.cause === 'rolled_back' && f.restoredBy !== undefined ? [f.restoredBy.id] : [],
    ),
  );
}

/**
 * Change failure rate over the `days` ending on `day`: production deployments that failed, were
 * rolled back, or are tied to an incident, each deployment once, over production deployments, so
 * never over 1. `history` must reach back before the window, so a rollback's earlier sha is known,
 * and `incidents` a day past it. Undefined when there were no deployments.
 */
export function changeFailureRate(
  settings: Settings,
  scope: TeamScope,
  day: string,
  history: readonly Deploy[],
  days = 28,
  incidents: readonly Incident[] = [],
): { rate: number; failed: number; rolledBack: number; incidents: number; deployments: number } | undefined {
  const window = windowEndingOn(day, days, settings.timezone);
  const deployments = productionDeploymentsIn(settings, scope, window, history).length;
  if (deployments === 0) return undefined;
  const inWindow = deployFailures(settings, scope, history).filter((f) => within(f.deploy.finishedAt, window));
  const failed = inWindow.filter((f) => f.cause === 'failed').length;
  const rolledBack = inWindow.length - failed;
  const counted = new Set(inWindow.map((f) => f.deploy.id));
  const withIncident = new Set<string>();
  for (const { deploy } of incidentLinks(settings, scope, incidents, history)) {
    if (
      deploy !== undefined &&
      !counted.has(deploy.id) &&
      isProductionDeployment(settings, deploy) &&
      deployOfTeam(settings, scope, deploy) &&
      within(deploy.finishedAt, window)
    )
      withIncident.add(deploy.id);
  }
  return {
    rate: (inWindow.length + withIncident.size) / deployments,
    failed,
    rolledBack,
    incidents: withIncident.size,
    deployments,
  };
}

/**
 * Times to restore in a window, in seconds: for each failed or rolled-back production deploy, from
 * its finish to the finish of the deploy that restored service (counted when that falls in the
 * window), and for each production incident resolved in the window, from its start to its
 * resolution (`cause`). The same records go to Datadog as DORA failures, so its time to restore agrees.
 */
export function restoreTimes(
  settings: Settings,
  scope: TeamScope,
  history: readonly Deploy[],
  window: { from: string; to: string },
  incidents: readonly Incident[] = [],
): number[] {
  return restoresByCause(settings, scope, history, window, incidents).map((r) => r.seconds);
}

export function restoresByCause(
  settings: Settings,
  scope: TeamScope,
  history: readonly Deploy[],
  window: { from: string; to: string },
  incidents: readonly Incident[] = [],
): Array<{ cause: 'deploy' | 'incident'; seconds: number }> {
  return [
    ...restoredFailureTimes(deployFailures(settings, scope, history), window).map((seconds) => ({
      cause: 'deploy' as const,
      seconds,
    })),
    ...incidentTimesToRestore(settings, scope, history, window, incidents).map((seconds) => ({
      cause: 'incident' as const,
      seconds,
    })),
  ];
}

const secondsBetween = (from: Deploy, to: Deploy) => (Date.parse(to.finishedAt) - Date.parse(from.finishedAt)) / 1000;

/** Each failed or rolled-back deploy restored in the window: its finish to the restoring deploy's. */
function restoredFailureTimes(failures: readonly DeployFailure[], window: { from: string; to: string }): number[] {
  return failures.flatMap((f) =>
    f.restoredBy !== undefined && within(f.restoredBy.finishedAt, window)
      ? [secondsBetween(f.deploy, f.restoredBy)]
      : [],
  );
}

/**
 * Failed deployment recovery time (DORA since 2023: change-caused failures only), in seconds, for
 * each remediation that falls in the window: a failed or rolled-back production deploy's finish to
 * the finish of the deploy that restored service; and a deploy an incident is tied to (not failed
 * or rolled back itself) to the next successful deploy of its service there that is not itself a
 * failure. Incidents with no deploy are external causes: `incidentTimesToRestore` counts them.
 */
export function failedDeploymentRecoveryTimes(
  settings: Settings,
  scope: TeamScope,
  history: readonly Deploy[],
  window: { from: string; to: string },
  incidents: readonly Incident[] = [],
): number[] {
  const failures = deployFailures(settings, scope, history);
  const failed = new Set(failures.map((f) => f.deploy.id));
  const times = restoredFailureTimes(failures, window);
  const linked = new Set<string>();
  for (const { deploy } of incidentLinks(settings, scope, incidents, history)) {
    if (deploy === undefined || failed.has(deploy.id) || linked.has(deploy.id)) continue;
    linked.add(deploy.id);
    const remedy = history
      .filter(
        (d) =>
          d.service === deploy.service &&
          d.environment === deploy.environment &&
          d.status === 'success' &&
          isProductionDeployment(settings, d) &&
          byFinish(d, deploy) > 0 &&
          !failed.has(d.id),
      )
      .sort(byFinish)[0];
    if (remedy !== undefined && within(remedy.finishedAt, window)) times.push(secondsBetween(deploy, remedy));
  }
  return times;
}

/** Incident time to restore: each production incident of the team resolved in the window, start to resolution. */
export function incidentTimesToRestore(
  settings: Settings,
  scope: TeamScope,
  history: readonly Deploy[],
  window: { from: string; to: string },
  incidents: readonly Incident[] = [],
): number[] {
  return incidentLinks(settings, scope, incidents, history).flatMap(({ incident }) =>
    incident.resolvedAt !== undefined && incident.startUnknown !== true && within(incident.resolvedAt, window)
      ? [Math.max(0, (Date.parse(incident.resolvedAt) - Date.parse(incident.startedAt)) / 1000)]
      : [],
  );
}

// ---- one deploy at a time, from the store (the export) ----------------------------------------

/** A failed or rolled-back deploy and the deploy that restored service: a DORA failure, closed. */
export interface Restore {
  kind: 'restore';
  cause: DeployFailure['cause'];
  failed: Deploy;
  restoredBy: Deploy;
}

/** The earliest successful deploy of `sha` to a deploy's service and environment, as its order. */
async function firstDeployed(store: EventStore, like: Deploy, sha: string | undefined): Promise<string | undefined> {
  if (sha === undefined || like.repository === undefined) return undefined;
  const orders = (await store.shippingDeploysAt(like.repository, sha))
    .filter((d) => d.service === like.service && d.environment === like.environment)
    .map(shipOrder)
    .sort();
  return orders[0];
}

/** `rolledBackBy`, with the two shas' first deploys read from the store. */
async function rolledBackInStore(store: EventStore, deploy: Deploy, next: Deploy): Promise<boolean> {
  const shas = [deploy.commitSha, next.commitSha];
  const orders = await Promise.all(shas.map((sha) => firstDeployed(store, deploy, sha)));
  return rolledBackBy(deploy, next, (sha) => orders[shas.indexOf(sha)]);
}

/**
 * The restores one production deploy takes part in, as the failure or as what restored service:
 * a failed deploy and the next success; a success and the failures since the previous success;
 * a rollback and the deploy it rolled back (and this deploy, if a later one already rolled it back).
 */
export async function restoresOf(store: EventStore, deploy: Deploy): Promise<Restore[]> {
  const { service, environment } = deploy;
  const restores: Restore[] = [];
  // Both reads at once: one round trip, where a failed deploy wastes the second read.
  const [next, previous] = await Promise.all([
    store.nextSuccessfulDeploy(service, environment, deploy.finishedAt),
    store.previousSuccessfulDeploy(service, environment, deploy.finishedAt),
  ]);
  if (deploy.status === 'failure') {
    if (next !== undefined) restores.push({ kind: 'restore', cause: 'failed', failed: deploy, restoredBy: next });
    return restores;
  }
  const since = previous?.finishedAt ?? new Date(Date.parse(deploy.finishedAt) - 56 * 86_400_000).toISOString();
  for (const failed of await store.deploysBetween(since, deploy.finishedAt, { service, environment })) {
    if (failed.status === 'failure' && failed.futureDated !== true)
      restores.push({ kind: 'restore', cause: 'failed', failed, restoredBy: deploy });
  }
  if (previous !== undefined && (await rolledBackInStore(store, previous, deploy)))
    restores.push({ kind: 'restore', cause: 'rolled_back', failed: previous, restoredBy: deploy });
  if (next !== undefined && (await rolledBackInStore(store, deploy, next)))
    restores.push({ kind: 'restore', cause: 'rolled_back', failed: deploy, restoredBy: next });
  return restores;
}
