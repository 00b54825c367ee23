/**
 * DORA's performance levels, from the table "Software delivery performance levels" of the
 * Accelerate State of DevOps Report 2024 (DORA, Google Cloud), the report docs/metrics.md cites:
 *
 * | level  | deployment frequency                     | change lead time        | change fail rate | failed deployment recovery time |
 * |--------|------------------------------------------|-------------------------|------------------|---------------------------------|
 * | elite  | on demand (multiple deploys per day)     | less than one day       | 5 %              | less than one hour              |
 * | high   | between once per day and once per week   | between a day and a week | 20 %            | less than one day               |
 * | medium | between once per week and once per month | between a week and a month | 10 %          | less than one day               |
 * | low    | between once per month and every six months | between a month and six months | 40 %  | between a week and a month      |
 *
 * The report gives ranges for the two throughput metrics and for recovery time, so a team's level
 * is the best whose range holds its figure; the bounds are read as: frequency at least 1 a day,
 * 1 a week, 1 a month; lead time p50 under 1 day, 1 week, 1 month; recovery p50 under 1 hour,
 * 1 day (high; medium shares it), 1 week (medium, filling the report's gap between a day and a
 * week), else low. For change fail rate the report gives each cluster's typical value, not a
 * range, and medium's (10 %) is below high's (20 %): a team takes the level whose value is nearest
 * its rate (ties to the better level). The report gives no levels for deployment rework rate.
 */
export type Tier = 'elite' | 'high' | 'medium' | 'low';

export const TIER_SOURCE = 'Accelerate State of DevOps Report 2024 (DORA)';

const DAY = 86_400;

function byBounds(value: number, bounds: readonly [number, number, number], better: 'up' | 'down'): Tier {
  const tiers: Tier[] = ['elite', 'high', 'medium'];
  for (const [i, bound] of bounds.entries()) {
    if (better === 'up' ? value >= bound : value < bound) return tiers[i] ?? 'low';
  }
  return 'low';
}

export interface Tiers {
  deploymentFrequency?: Tier;
  leadTime?: Tier;
  changeFailureRate?: Tier;
  failedDeploymentRecoveryTime?: Tier;
}

/** Each metric's level, for the metrics that have a figure. */
export function tiersOf(figures: {
  deploymentFrequency: number;
  deployments: number;
  leadTimeP50: number | null;
  changeFailureRate: number | null;
  failedDeploymentRecoveryTimeP50: number | null;
}): Tiers {
  const tiers: Tiers = {};
  if (figures.deployments > 0)
    tiers.deploymentFrequency = byBounds(figures.deploymentFrequency, [1, 1 / 7, 1 / 30], 'up');
  if (figures.leadTimeP50 !== null) tiers.leadTime = byBounds(figures.leadTimeP50, [DAY, 7 * DAY, 30 * DAY], 'down');
  if (figures.changeFailureRate !== null) {
    const rate = figures.changeFailureRate;
    const clusters: Array<[Tier, number]> = [
      ['elite', 0.05],
      ['medium', 0.1],
      ['high', 0.2],
      ['low', 0.4],
    ];
    const rank: Record<Tier, number> = { elite: 0, high: 1, medium: 2, low: 3 };
    clusters.sort(([ta, a], [tb, b]) => Math.abs(rate - a) - Math.abs(rate - b) || rank[ta] - rank[tb]);
    tiers.changeFailureRate = clusters[0]?.[0] ?? 'low';
  }
  if (figures.failedDeploymentRecoveryTimeP50 !== null)
    tiers.failedDeploymentRecoveryTime = byBounds(
      figures.failedDeploymentRecoveryTimeP50,
      [3600, DAY, 7 * DAY],
      'down',
    );
  return tiers;
}
