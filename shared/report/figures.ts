import type { Commit, Deploy, Incident, PullRequest, ShippedChange } from '../events/model.ts';
import {
  ALL,
  addDays,
  commitIsBot,
  dayOf,
  deployOfTeam,
  incidentLinks,
  isProductionDeployment,
  percentile,
  startOfDay,
  type TeamScope,
  teamScopes,
  windowEndingOn,
  within,
} from '../metrics/definitions.ts';
import { changeFailureRate, failedDeploymentRecoveryTimes, incidentTimesToRestore } from '../metrics/failures.ts';
import { periodFigures } from '../metrics/period.ts';
import { promotionTimes, stageArrivals } from '../metrics/promotion.ts';
import { reworkIn, type ReworkRule } from '../metrics/rework.ts';
import { type Tiers, tiersOf } from '../metrics/tiers.ts';
import { isDivided } from '../events/ownership.ts';
import { isBot, type Settings, teamOf } from '../events/settings.ts';
import type { EventStore } from '../store/store.ts';

/** Inclusive calendar days in the reporting time zone. */
interface Period {
  label: string;
  from: string;
  to: string;
}

export interface Annotation {
  date: string;
  label: string;
}

/** One period's headline figures for one team: the same definitions `rollup` publishes. */
export interface Headline {
  /** Days of the period (a period in progress: the days up to today). */
  days: number;
  /** Developers counted active on at least one day of the period. */
  activeDevelopers: number;
  /** The mean of each day's active developers over the period. */
  activeDevelopersDailyMean: number;
  successfulDeploys: number;
  deployments: number;
  deploymentFrequency: number;
  deploysPerDeveloperPerDay: number | null;
  leadTimeP50: number | null;
  leadTimeP90: number | null;
  changeFailureRate: number | null;
  /** DORA's failed deployment recovery time: change-caused failures only (failed, rolled back, tied to an incident). */
  failedDeploymentRecoveryTimeP50: number | null;
  /** Incident time to restore (start → resolved), every production incident: named apart, as DORA does. */
  incidentTimeToRestoreP50: number | null;
  /** Production incidents that started in the period: tied to a deploy, and to none. */
  incidents: { total: number; linked: number; unlinked: number };
  /** DORA's deployment rework rate: unplanned production deployments ÷ production deployments. */
  deploymentReworkRate: number | null;
  /** The drill-down: each unplanned deployment and the rule that made it so. */
  rework: Array<{ deploy: string; service: string; finishedAt: string; rule: ReworkRule; detail: string }>;
  /** DORA's performance level per metric (metrics/tiers.ts: the 2024 report's table). */
  tiers: Tiers;
  /**
   * Where the time goes, with `stages` configured: commit → merged → first stage → production
   * (p50 of each step over the changes shipped in the period; null without stages or data).
   */
  promotion: {
    commitToMergedP50: number | null;
    mergedToFirstStageP50: number | null;
    firstStageToProductionP50: number | null;
    leadTimeToFirstStageP50: number | null;
    /** Production deploys' promotion time from the first stage (their sha's first stage deploy). */
    promotionTimeP50: number | null;
    /** Successful production deploys of a sha no earlier stage saw (a hotfix straight to production). */
    straightToProduction: number;
  };
}

export interface WeekPoint {
  weekEnding: string;
  /** The 7-day figure `rollup` publishes on that day (`periodFigures` of the week). */
  deploysPerDeveloperPerDay: number | null;
  leadTimeP50: number | null;
}

export interface TeamReport {
  team: string;
  current: Headline;
  comparison: Headline;
  comparisonWhole?: Headline;
  weekly: WeekPoint[];
}

interface ServiceMove {
  service: string;
  deploys: { current: number; comparison: number; change: number };
  leadTimeP50: { current: number | null; comparison: number | null; change: number | null };
}

interface DataQuality {
  deploysBySource: Record<string, number>;
  commits: number;
  mergedPullRequests: number;
  deploysWithoutCommitSha: number;
  /** Deploys that said they finished after their receipt (bad clocks or data): counted nowhere. */
  deploysDatedInTheFuture: number;
  /** Shipped commits dated after their deploy (clock skew): their lead time is 0. */
  commitsDatedAfterTheirDeploy: number;
  servicesWithoutTeam: string[];
  /** Repositories with default-branch commits in the period that no team lists (their authors count for `all` only). */
  repositoriesWithoutTeam: string[];
  /** Sources whose last processed delivery is older than `sourceSilenceHours`, as the report is made. */
  silentSources: Array<{ source: string; lastSeen: string }>;
  /** Incidents whose start no update gave (a monitor's recovery alone): counted, with no time to restore. */
  incidentsWithoutStart: string[];
  /** Commits of repositories divided by paths whose files are unknown: counted for every service and team there. */
  commitsWithUnknownFiles: string[];
  botAuthorsExcluded: string[];
  daysWithoutData: number;
}

/** One data-quality finding: what it is, how many, and the first few examples. */
export interface Finding {
  label: string;
  count: number;
  examples: string[];
}

const EXAMPLES = 3;

/**
 * The findings a reader should look at (non-zero ones only), in the words every surface uses: the
 * report's "How far to trust these numbers", the live view, and `devstats doctor`.
 */
export function findingsOf(q: DataQuality): Finding[] {
  const list = (label: string, items: readonly string[]): Finding => ({
    label,
    count: items.length,
    examples: items.slice(0, EXAMPLES),
  });
  return [
    { label: 'deploys without a commit sha (no lead time possible)', count: q.deploysWithoutCommitSha, examples: [] },
    {
      label: 'deploys dated in the future of their receipt (counted nowhere)',
      count: q.deploysDatedInTheFuture,
      examples: [],
    },
    {
      label: 'commits dated after their deploy (clock skew; lead time taken as 0)',
      count: q.commitsDatedAfterTheirDeploy,
      examples: [],
    },
    list('services that map to no team', q.servicesWithoutTeam),
    list('repositories whose commits map to no team', q.repositoriesWithoutTeam),
    list(
      'sources silent longer than sourceSilenceHours',
      q.silentSources.map((s) => `${s.source} (last ${s.lastSeen})`),
    ),
    list('incidents with no known start (no time to restore)', q.incidentsWithoutStart),
    list(
      'commits of a repository divided by paths whose files are unknown (counted for all its services)',
      q.commitsWithUnknownFiles,
    ),
  ].filter((f) => f.count > 0);
}

export interface Report {
  period: Period;
  comparison: Period;
  /** For a period in progress compared with a longer one: that whole period, shown beside it. */
  comparisonWhole?: Period;
  timezone: string;
  /** The configured stages (`stages:`): where the time goes is shown when there are any. */
  stages: string[];
  generatedAt: string;
  teams: TeamReport[];
  movers: { byDeploys: ServiceMove[]; byLeadTime: ServiceMove[] };
  dataQuality: DataQuality;
  annotations: Annotation[];
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** `2026-Q3` → 1 July to 30 September 2026. */
export function quarter(label: string): Period {
  const match = /^(\d{4})-Q([1-4])$/.exec(label);
  if (match === null) throw new RangeError(`not a quarter: ${label} (expected e.g. 2026-Q3)`);
  const year = Number(match[1]);
  const q = Number(match[2]);
  const from = new Date(Date.UTC(year, (q - 1) * 3, 1)).toISOString().slice(0, 10);
  const to = new Date(Date.UTC(year, q * 3, 0)).toISOString().slice(0, 10);
  return { label, from, to };
}

export function dayRange(from: string, to: string): Period {
  if (!DAY.test(from) || !DAY.test(to)) throw new RangeError('--from and --to take days: YYYY-MM-DD');
  if (to < from) throw new RangeError('--to is before --from');
  return { label: `${from} – ${to}`, from, to };
}

export function daysIn(period: Period): number {
  return Math.round((Date.parse(period.to) - Date.parse(period.from)) / 86_400_000) + 1;
}

/** The period of the same length just before, or the quarter before a quarter. */
export function previousPeriod(period: Period): Period {
  if (/^\d{4}-Q[1-4]$/.test(period.label)) {
    const [year = 0, q = 1] = period.label.split('-Q').map(Number);
    return quarter(q === 1 ? `${year - 1}-Q4` : `${year}-Q${q - 1}`);
  }
  const days = daysIn(period);
  return dayRange(addDays(period.from, -days), addDays(period.from, -1));
}

interface Data {
  history: Deploy[];
  commits: Commit[];
  pullRequests: PullRequest[];
  shipped: ShippedChange[];
  incidents: Incident[];
}

/** A team's changes shipped in a window. */
function leadChangesIn(
  settings: Settings,
  scope: TeamScope,
  shipped: readonly ShippedChange[],
  window: { from: string; to: string },
): ShippedChange[] {
  return shipped.filter(
    (s) =>
      within(s.deployedAt, window) && (scope.name === ALL || teamOf(settings, s.service, s.repository) === scope.name),
  );
}

/** Lead times (seconds) of a team's changes shipped in a window. */
function leadTimesIn(
  settings: Settings,
  scope: TeamScope,
  shipped: readonly ShippedChange[],
  window: { from: string; to: string },
): number[] {
  return leadChangesIn(settings, scope, shipped, window).map((s) => s.leadTimeSeconds);
}

function headline(settings: Settings, scope: TeamScope, period: Period, data: Data): Headline {
  const figures = periodFigures(settings, scope, period.from, period.to, data);
  const window = windowEndingOn(period.to, figures.days, settings.timezone);
  const leadTimes = leadTimesIn(settings, scope, data.shipped, window);
  const incidents = incidentLinks(settings, scope, data.incidents, data.history).filter(({ incident }) =>
    within(incident.startedAt, window),
  );
  const linked = incidents.filter((i) => i.deploy !== undefined).length;
  const rework = reworkIn(settings, scope, window, data);
  const promotion = promotionFigures(settings, scope, window, data);
  const leadTimeP50 = percentile(leadTimes, 50) ?? null;
  const changeFailure =
    changeFailureRate(settings, scope, period.to, data.history, figures.days, data.incidents)?.rate ?? null;
  const recoveryP50 =
    percentile(failedDeploymentRecoveryTimes(settings, scope, data.history, window, data.incidents), 50) ?? null;
  return {
    days: figures.days,
    activeDevelopers: figures.activeDevelopers.distinct,
    activeDevelopersDailyMean: figures.activeDevelopers.dailyMean,
    successfulDeploys: figures.successfulDeploys,
    deployments: figures.deployments,
    // Production deployments (successful or failed) per elapsed day: what Datadog's DORA view counts too.
    deploymentFrequency: figures.deploymentFrequency,
    deploysPerDeveloperPerDay: figures.deploysPerDeveloperPerDay ?? null,
    leadTimeP50,
    leadTimeP90: percentile(leadTimes, 90) ?? null,
    changeFailureRate: changeFailure,
    failedDeploymentRecoveryTimeP50: recoveryP50,
    incidentTimeToRestoreP50:
      percentile(incidentTimesToRestore(settings, scope, data.history, window, data.incidents), 50) ?? null,
    incidents: { total: incidents.length, linked, unlinked: incidents.length - linked },
    deploymentReworkRate: figures.deployments > 0 ? rework.length / figures.deployments : null,
    rework: rework.map((r) => ({
      deploy: r.deploy.id,
      service: r.deploy.service,
      finishedAt: r.deploy.finishedAt,
      rule: r.rule,
      detail: r.detail,
    })),
    promotion,
    tiers: tiersOf({
      deploymentFrequency: figures.deploymentFrequency,
      deployments: figures.deployments,
      leadTimeP50,
      changeFailureRate: changeFailure,
      failedDeploymentRecoveryTimeP50: recoveryP50,
    }),
  };
}

const NO_PROMOTION: Headline['promotion'] = {
  commitToMergedP50: null,
  mergedToFirstStageP50: null,
  firstStageToProductionP50: null,
  leadTimeToFirstStageP50: null,
  promotionTimeP50: null,
  straightToProduction: 0,
};

function promotionFigures(
  settings: Settings,
  scope: TeamScope,
  window: { from: string; to: string },
  data: Data,
): Headline['promotion'] {
  if (settings.stages.length === 0) return NO_PROMOTION;
  const p50 = (values: number[]) => percentile(values, 50) ?? null;
  const deploys = new Map(data.history.map((d) => [d.id, d]));
  const together = new Map<string, ShippedChange[]>();
  for (const s of data.shipped) together.set(s.deployId, [...(together.get(s.deployId) ?? []), s]);
  const steps = { merged: [] as number[], staged: [] as number[], promoted: [] as number[], lead: [] as number[] };
  const span = (from: string, to: string) => Math.max(0, (Date.parse(to) - Date.parse(from)) / 1000);
  for (const change of leadChangesIn(settings, scope, data.shipped, window)) {
    const arrival = stageArrivals(
      settings,
      change,
      deploys.get(change.deployId)?.commitSha,
      together.get(change.deployId) ?? [],
      data.history,
    )[0];
    const merged = change.pullRequest?.mergedAt;
    if (merged !== undefined) steps.merged.push(span(change.committedAt, merged));
    if (arrival === undefined) continue;
    if (merged !== undefined) steps.staged.push(span(merged, arrival.at));
    steps.promoted.push(span(arrival.at, change.deployedAt));
    steps.lead.push(arrival.leadTimeSeconds);
  }
  const promotions: number[] = [];
  let straight = 0;
  for (const d of data.history) {
    if (d.status !== 'success' || !isProductionDeployment(settings, d) || !within(d.finishedAt, window)) continue;
    if (!deployOfTeam(settings, scope, d)) continue;
    const times = promotionTimes(settings, d, data.history);
    const first = times[0];
    if (first !== undefined) promotions.push(first.seconds);
    else if (
      d.commitSha !== undefined &&
      !data.history.some(
        (e) => e.id !== d.id && e.service === d.service && e.commitSha === d.commitSha && e.finishedAt < d.finishedAt,
      )
    )
      straight++;
  }
  return {
    commitToMergedP50: p50(steps.merged),
    mergedToFirstStageP50: p50(steps.staged),
    firstStageToProductionP50: p50(steps.promoted),
    leadTimeToFirstStageP50: p50(steps.lead),
    promotionTimeP50: p50(promotions),
    straightToProduction: straight,
  };
}

/**
 * Each complete week of the period, to its last day that has ended (`lastDay`: yesterday, for a
 * period in progress): never a week still running, never a zero drawn into the future.
 */
function weekly(settings: Settings, scope: TeamScope, period: Period, lastDay: string, data: Data): WeekPoint[] {
  const points: WeekPoint[] = [];
  for (let end = addDays(period.from, 6); end <= period.to && end <= lastDay; end = addDays(end, 7)) {
    const from = addDays(end, -6);
    const figures = periodFigures(settings, scope, from, end, data);
    const leadTimes = leadTimesIn(settings, scope, data.shipped, windowEndingOn(end, 7, settings.timezone));
    points.push({
      weekEnding: end,
      deploysPerDeveloperPerDay: figures.deploysPerDeveloperPerDay ?? null,
      leadTimeP50: percentile(leadTimes, 50) ?? null,
    });
  }
  return points;
}

function movers(settings: Settings, current: Period, comparison: Period, data: Data): Report['movers'] {
  const tally = (period: Period) => {
    const window = windowEndingOn(period.to, daysIn(period), settings.timezone);
    const deploys = new Map<string, number>();
    const leads = new Map<string, number[]>();
    for (const d of data.history) {
      if (d.status === 'success' && isProductionDeployment(settings, d) && within(d.finishedAt, window)) {
        deploys.set(d.service, (deploys.get(d.service) ?? 0) + 1);
      }
    }
    for (const s of data.shipped) {
      if (!within(s.deployedAt, window)) continue;
      const list = leads.get(s.service);
      if (list === undefined) leads.set(s.service, [s.leadTimeSeconds]);
      else list.push(s.leadTimeSeconds);
    }
    return { deploys, leads };
  };
  const now = tally(current);
  const before = tally(comparison);
  const services = new Set([
    ...now.deploys.keys(),
    ...before.deploys.keys(),
    ...now.leads.keys(),
    ...before.leads.keys(),
  ]);
  const moves: ServiceMove[] = [...services].sort().map((service) => {
    const c = now.deploys.get(service) ?? 0;
    const p = before.deploys.get(service) ?? 0;
    const lc = percentile(now.leads.get(service) ?? [], 50) ?? null;
    const lp = percentile(before.leads.get(service) ?? [], 50) ?? null;
    return {
      service,
      deploys: { current: c, comparison: p, change: c - p },
      leadTimeP50: { current: lc, comparison: lp, change: lc !== null && lp !== null ? lc - lp : null },
    };
  });
  return {
    byDeploys: [...moves]
      .sort((a, b) => Math.abs(b.deploys.change) - Math.abs(a.deploys.change))
      .filter((m) => m.deploys.change !== 0)
      .slice(0, 5),
    byLeadTime: moves
      .filter((m) => m.leadTimeP50.change !== null && m.leadTimeP50.change !== 0)
      .sort((a, b) => Math.abs(b.leadTimeP50.change ?? 0) - Math.abs(a.leadTimeP50.change ?? 0))
      .slice(0, 5),
  };
}

function dataQuality(
  settings: Settings,
  period: Period,
  data: Data,
  seen: Record<string, string>,
  at: Date,
): DataQuality {
  const window = windowEndingOn(period.to, daysIn(period), settings.timezone);
  const deploys = data.history.filter((d) => within(d.finishedAt, window));
  const commits = data.commits.filter((c) => within(c.timestamp, window));
  const pullRequests = data.pullRequests.filter((p) => within(p.mergedAt, window));
  const deploysBySource: Record<string, number> = {};
  for (const d of deploys) deploysBySource[d.source] = (deploysBySource[d.source] ?? 0) + 1;
  const bots = new Set<string>();
  for (const c of commits) if (commitIsBot(settings, c)) bots.add(c.authorLogin ?? c.authorName);
  for (const p of pullRequests) if (p.isBot || isBot(settings, { login: p.authorLogin })) bots.add(p.authorLogin);
  const busyDays = new Set<string>();
  const days = new Intl.DateTimeFormat('en-CA', { timeZone: settings.timezone });
  const dayOfInstant = (iso: string) => days.format(new Date(iso));
  for (const d of deploys) busyDays.add(dayOfInstant(d.finishedAt));
  for (const c of commits) busyDays.add(dayOfInstant(c.timestamp));
  return {
    deploysBySource,
    commits: commits.length,
    mergedPullRequests: pullRequests.length,
    deploysWithoutCommitSha: deploys.filter((d) => d.commitSha === undefined).length,
    deploysDatedInTheFuture: deploys.filter((d) => d.futureDated === true).length,
    commitsDatedAfterTheirDeploy: data.shipped.filter(
      (s) => within(s.deployedAt, window) && s.committedAt > s.deployedAt,
    ).length,
    servicesWithoutTeam: [
      ...new Set(deploys.filter((d) => teamOf(settings, d.service, d.repository) === undefined).map((d) => d.service)),
    ].sort(),
    repositoriesWithoutTeam:
      Object.keys(settings.teams).length === 0
        ? []
        : [
            ...new Set(
              commits
                .filter(
                  (c) =>
                    settings.defaultBranches.includes(c.branch) &&
                    !Object.values(settings.teams).some((t) => t.repositories.includes(c.repository)) &&
                    !isDivided(settings, c.repository),
                )
                .map((c) => c.repository),
            ),
          ].sort(),
    silentSources: Object.entries(seen)
      .filter(([, lastSeen]) => at.getTime() - Date.parse(lastSeen) > settings.sourceSilenceHours * 3_600_000)
      .map(([source, lastSeen]) => ({ source, lastSeen }))
      .sort((a, b) => (a.source < b.source ? -1 : 1)),
    incidentsWithoutStart: data.incidents
      .filter((i) => i.startUnknown === true && i.withdrawn !== true && within(i.startedAt, window))
      .map((i) => i.id)
      .sort(),
    commitsWithUnknownFiles: commits
      .filter((c) => c.paths === undefined && isDivided(settings, c.repository))
      .map((c) => c.id)
      .sort(),
    botAuthorsExcluded: [...bots].sort(),
    daysWithoutData: daysIn(period) - busyDays.size,
  };
}

/**
 * A period that has not ended runs to today (DESIGN.md, "A period's figures"): it is named with the
 * days elapsed ("2026-Q4, day 67 of 92"), compared with the same number of days from the start of
 * the comparison period, and the whole comparison period is kept to show beside it. Nothing is
 * drawn after today. A period that has ended, or not begun, is as it is.
 */
export function asOf(
  period: Period,
  comparison: Period,
  today: string,
): { period: Period; comparison: Period; comparisonWhole?: Period } {
  if (today < period.from || today >= period.to) return { period, comparison };
  const elapsed = daysIn({ ...period, to: today });
  const current = { label: `${period.label}, day ${elapsed} of ${daysIn(period)}`, from: period.from, to: today };
  if (daysIn(comparison) <= elapsed) return { period: current, comparison };
  return {
    period: current,
    comparison: {
      label: `the first ${elapsed} days of ${comparison.label}`,
      from: comparison.from,
      to: addDays(comparison.from, elapsed - 1),
    },
    comparisonWhole: comparison,
  };
}

/**
 * The quarterly report's figures, read from the store through the metric definitions `rollup`
 * uses (shared/metrics/definitions.ts), so the report and the Datadog gauges cannot disagree.
 */
export async function buildReport(
  store: EventStore,
  settings: Settings,
  options: { period: Period; comparison: Period; teams?: string[]; annotations?: Annotation[]; now?: Date },
): Promise<Report> {
  const today = dayOf(options.now ?? new Date(), settings.timezone);
  const { period, comparison, comparisonWhole } = asOf(options.period, options.comparison, today);
  const earliest = comparison.from < period.from ? comparison.from : period.from;
  // The whole comparison period, when there is one, ends at or after its first days.
  const comparisonTo = (comparisonWhole ?? comparison).to;
  const latest = comparisonTo > period.to ? comparisonTo : period.to;
  const tz = settings.timezone;
  const end = startOfDay(addDays(latest, 1), tz).toISOString();
  // History reaches back past the comparison period: rollbacks and restores need what came before.
  const historyFrom = startOfDay(addDays(earliest, -56), tz).toISOString();
  const developersFrom = startOfDay(addDays(earliest, -settings.developerWindowDays), tz).toISOString();
  const [history, commits, pullRequests, shipped, incidents, seen] = await Promise.all([
    store.deploysBetween(historyFrom, end),
    store.commitsBetween(developersFrom, end),
    store.pullRequestsBetween(developersFrom, end),
    store.shippedBetween(startOfDay(earliest, tz).toISOString(), end),
    store.incidentsBetween(historyFrom, end),
    store.sourcesSeen(),
  ]);
  const data: Data = { history, commits, pullRequests, shipped, incidents };
  const scopes = teamScopes(settings).filter(
    (s) => options.teams === undefined || options.teams.length === 0 || options.teams.includes(s.name),
  );
  const unknown = (options.teams ?? []).filter((t) => !scopes.some((s) => s.name === t));
  if (unknown.length > 0) throw new RangeError(`no such team: ${unknown.join(', ')} (the configured teams, or all)`);
  return {
    period,
    comparison,
    ...(comparisonWhole === undefined ? {} : { comparisonWhole }),
    timezone: tz,
    stages: settings.stages,
    generatedAt: (options.now ?? new Date()).toISOString(),
    teams: scopes.map((scope) => ({
      team: scope.name,
      current: headline(settings, scope, period, data),
      comparison: headline(settings, scope, comparison, data),
      ...(comparisonWhole === undefined ? {} : { comparisonWhole: headline(settings, scope, comparisonWhole, data) }),
      weekly: weekly(settings, scope, period, period.to < today ? period.to : addDays(today, -1), data),
    })),
    movers: movers(settings, period, comparison, data),
    // Silence is the sources' state now (the store keeps each source's latest delivery only).
    dataQuality: dataQuality(settings, period, data, seen, options.now ?? new Date()),
    annotations: (options.annotations ?? []).filter((a) => a.date >= period.from && a.date <= period.to),
  };
}
