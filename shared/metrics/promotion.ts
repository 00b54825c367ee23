import type { Deploy, ShippedChange } from '../events/model.ts';
import type { Settings } from '../events/settings.ts';
import { byFinish } from './definitions.ts';

/**
 * Promotion through environments (DESIGN.md, "Promotion"), with `stages: [staging, production]`:
 * - a shipped change's arrival in each earlier stage: the first successful deploy of its service
 *   there, between its commit and its production deploy, of the production deploy's sha or of a
 *   sha that production deploy shipped committed at or after the change (the history between two
 *   production deploys is read in commit order);
 * - a production deploy's promotion time from each earlier stage: its finish − the finish of the
 *   earliest successful deploy of the same sha to that stage, for the first production deploy of
 *   the sha only (a redeploy promotes nothing). A sha never staged (a hotfix straight to
 *   production) has none.
 */

/** The stages before `environment` (production: every configured stage that is not production). */
export function earlierStages(settings: Settings, environment: string): string[] {
  const stages = settings.stages;
  const at = stages.indexOf(environment);
  if (at >= 0) return stages.slice(0, at);
  return settings.productionEnvironments.includes(environment)
    ? stages.filter((s) => !settings.productionEnvironments.includes(s))
    : [];
}

const seconds = (from: string, to: string) => Math.max(0, (Date.parse(to) - Date.parse(from)) / 1000);

/** When a shipped change reached each earlier stage (none: it went straight to production). */
export function stageArrivals(
  settings: Settings,
  change: ShippedChange,
  productionSha: string | undefined,
  shippedTogether: readonly ShippedChange[],
  deploys: readonly Deploy[],
): Array<{ stage: string; at: string; leadTimeSeconds: number }> {
  const later = new Set(shippedTogether.filter((s) => s.committedAt >= change.committedAt).map((s) => s.sha));
  if (productionSha !== undefined) later.add(productionSha);
  const arrivals: Array<{ stage: string; at: string; leadTimeSeconds: number }> = [];
  for (const stage of earlierStages(settings, change.environment)) {
    const first = deploys
      .filter(
        (d) =>
          d.service === change.service &&
          d.environment === stage &&
          d.status === 'success' &&
          d.commitSha !== undefined &&
          later.has(d.commitSha) &&
          d.finishedAt >= change.committedAt &&
          d.finishedAt <= change.deployedAt,
      )
      .sort(byFinish)[0];
    if (first !== undefined)
      arrivals.push({ stage, at: first.finishedAt, leadTimeSeconds: seconds(change.committedAt, first.finishedAt) });
  }
  return arrivals;
}

/** A production deploy's promotion time from each earlier stage, when it is the sha's first there. */
export function promotionTimes(
  settings: Settings,
  deploy: Deploy,
  deploys: readonly Deploy[],
): Array<{ from: string; seconds: number }> {
  if (deploy.status !== 'success' || deploy.commitSha === undefined) return [];
  const sameSha = (d: Deploy) =>
    d.service === deploy.service && d.commitSha === deploy.commitSha && d.status === 'success';
  const earlierHere = deploys.some(
    (d) => sameSha(d) && d.environment === deploy.environment && byFinish(d, deploy) < 0,
  );
  if (earlierHere) return [];
  return earlierStages(settings, deploy.environment).flatMap((from) => {
    const first = deploys
      .filter((d) => sameSha(d) && d.environment === from && d.finishedAt <= deploy.finishedAt)
      .sort(byFinish)[0];
    return first === undefined ? [] : [{ from, seconds: seconds(first.finishedAt, deploy.finishedAt) }];
  });
}
