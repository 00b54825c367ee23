import type { Commit, Deploy, PullRequest } from '../events/model.ts';
import type { Settings } from '../events/settings.ts';
import {
  activeDevelopers,
  addDays,
  developersIn,
  productionDeploymentsIn,
  successfulProductionDeploys,
  type TeamScope,
  windowEndingOn,
} from './definitions.ts';

/**
 * A period's figures for one team (DESIGN.md, "A period's figures"), from this one function on
 * every surface: the quarterly report, the live view, `devstats demo`'s summary, and `rollup`'s
 * 1d, 7d and 28d gauges. So the report of any 28 days equals the `28d` gauge of its last day.
 */
export interface PeriodFigures {
  /** Days of the period, first to last inclusive (a period in progress runs to today). */
  days: number;
  successfulDeploys: number;
  /** Production deployments, successful or failed (cancelled ones count nowhere). */
  deployments: number;
  /** Deployments ÷ days. */
  deploymentFrequency: number;
  /** Σ over the period's days of that day's active developers. */
  developerDays: number;
  activeDevelopers: {
    /** Developers counted active on at least one day of the period (the team's headcount when set). */
    distinct: number;
    /** `developerDays` ÷ days. */
    dailyMean: number;
  };
  /**
   * Σ successful production deploys ÷ Σ daily active developers: the mean of the daily figures
   * weighted by each day's headcount. Undefined when no day had a developer.
   */
  deploysPerDeveloperPerDay: number | undefined;
}

export interface PeriodData {
  history: readonly Deploy[];
  commits: readonly Commit[];
  pullRequests: readonly PullRequest[];
}

/** The figures of the days `from` to `to` (inclusive, YYYY-MM-DD in the reporting time zone). */
export function periodFigures(
  settings: Settings,
  scope: TeamScope,
  from: string,
  to: string,
  data: PeriodData,
): PeriodFigures {
  const days = Math.round((Date.parse(to) - Date.parse(from)) / 86_400_000) + 1;
  const window = windowEndingOn(to, days, settings.timezone);
  let developerDays = 0;
  for (let day = from; day <= to; day = addDays(day, 1))
    developerDays += activeDevelopers(settings, scope, day, data.commits, data.pullRequests);
  // Anyone counted on some day: an author within the developer window before any of the days.
  const reach = windowEndingOn(to, days + settings.developerWindowDays - 1, settings.timezone);
  const distinct = scope.headcount ?? developersIn(settings, scope, reach, data.commits, data.pullRequests).size;
  const successfulDeploys = successfulProductionDeploys(settings, scope, to, days, data.history);
  const deployments = productionDeploymentsIn(settings, scope, window, data.history).length;
  return {
    days,
    successfulDeploys,
    deployments,
    deploymentFrequency: deployments / days,
    developerDays,
    activeDevelopers: { distinct, dailyMean: developerDays / days },
    deploysPerDeveloperPerDay: developerDays > 0 ? successfulDeploys / developerDays : undefined,
  };
}
