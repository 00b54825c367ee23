import type { Commit, Deploy, PullRequest } from './events.ts';
import { isBot, type Settings, teamOf } from './settings.ts';

/**
 * The metric definitions of DESIGN.md ("Metric definitions"), as pure functions of stored events.
 * `rollup` publishes them as gauges and the quarterly report reads them: one implementation, so
 * the two can never disagree.
 */

/** The organisation is the team `all`. */
export const ALL = 'all';

// ---- days in the reporting time zone --------------------------------------------------------

/** The calendar day (YYYY-MM-DD) an instant falls on in `timezone`. */
const dayFormats = new Map<string, Intl.DateTimeFormat>();
export function dayOf(instant: Date, timezone: string): string {
  let format = dayFormats.get(timezone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat('en-CA', {
      timeZone: timezone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
    });
    dayFormats.set(timezone, format);
  }
  return format.format(instant);
}

/** Minutes `timezone` is ahead of UTC at an instant. */
function offsetMinutes(instant: number, timezone: string): number {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    })
      .formatToParts(new Date(instant))
      .map((p) => [p.type, Number(p.value)]),
  ) as Record<string, number>;
  const local = Date.UTC(
    parts.year ?? 0,
    (parts.month ?? 1) - 1,
    parts.day ?? 1,
    parts.hour ?? 0,
    parts.minute ?? 0,
    parts.second ?? 0,
  );
  return Math.round((local - Math.floor(instant / 1000) * 1000) / 60_000);
}

/** The UTC instant a day starts at in `timezone` (its local midnight, daylight saving included). */
export function startOfDay(day: string, timezone: string): Date {
  const [y = 0, m = 1, d = 1] = day.split('-').map(Number);
  const guess = Date.UTC(y, m - 1, d);
  let utc = guess - offsetMinutes(guess, timezone) * 60_000;
  utc = guess - offsetMinutes(utc, timezone) * 60_000;
  return new Date(utc);
}

export function addDays(day: string, days: number): string {
  const [y = 0, m = 1, d = 1] = day.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

/** [from, to) in UTC of the `days` days ending on `day`, in `timezone`. */
export function windowEndingOn(day: string, days: number, timezone: string): { from: string; to: string } {
  return {
    from: startOfDay(addDays(day, -(days - 1)), timezone).toISOString(),
    to: startOfDay(addDays(day, 1), timezone).toISOString(),
  };
}

const within = (time: string, window: { from: string; to: string }) => time >= window.from && time < window.to;

// ---- teams -----------------------------------------------------------------------------------

export interface TeamScope {
  name: string;
  /** Undefined for `all`: every service and repository. */
  services?: ReadonlySet<string>;
  repositories?: ReadonlySet<string>;
  members?: ReadonlySet<string>;
  headcount?: number;
}

/** Every configured team, then the organisation. */
export function teamScopes(settings: Settings): TeamScope[] {
  const teams: TeamScope[] = Object.entries(settings.teams).map(([name, t]) => ({
    name,
    services: new Set(t.services),
    repositories: new Set(t.repositories),
    ...(t.members.length > 0 ? { members: new Set(t.members.map((m) => m.toLowerCase())) } : {}),
    ...(t.headcount !== undefined ? { headcount: t.headcount } : {}),
  }));
  return [...teams, { name: ALL }];
}

function deployOfTeam(settings: Settings, scope: TeamScope, deploy: Deploy): boolean {
  if (scope.name === ALL) return true;
  return teamOf(settings, deploy.service, deploy.repository) === scope.name;
}

function inTeamRepositories(scope: TeamScope, repository: string): boolean {
  return scope.repositories === undefined || scope.repositories.has(repository);
}

// ---- the definitions -------------------------------------------------------------------------

export function isProductionDeployment(settings: Settings, deploy: Deploy): boolean {
  return settings.productionEnvironments.includes(deploy.environment) && deploy.status !== 'cancelled';
}

/** Logins by email, from the commits that carry both: a name-only commit is its author's by email. */
const loginsByEmail = new WeakMap<readonly Commit[], Map<string, string>>();
function loginByEmail(commits: readonly Commit[]): Map<string, string> {
  let map = loginsByEmail.get(commits);
  if (map === undefined) {
    map = new Map();
    for (const c of commits)
      if (c.authorEmail !== undefined && c.authorLogin !== undefined && !map.has(c.authorEmail.toLowerCase()))
        map.set(c.authorEmail.toLowerCase(), c.authorLogin.toLowerCase());
    loginsByEmail.set(commits, map);
  }
  return map;
}

/** Who a commit's author is: the login, else the login the same email goes with, else the email or name. */
export function developerOf(commit: Commit, logins: ReadonlyMap<string, string>): string {
  if (commit.authorLogin !== undefined) return commit.authorLogin.toLowerCase();
  const email = commit.authorEmail?.toLowerCase();
  return (email === undefined ? undefined : (logins.get(email) ?? email)) ?? commit.authorName.toLowerCase();
}

export function commitIsBot(settings: Settings, c: Commit): boolean {
  return c.isBot || isBot(settings, { login: c.authorLogin, name: c.authorName, email: c.authorEmail });
}

/**
 * Active developers of a team on `day`: distinct non-bot authors of commits on a default branch
 * or of merged pull requests in the team's repositories during the trailing `developerWindowDays`
 * ending on `day` (only the team's members, when it lists them); or the team's `headcount`.
 */
export function activeDevelopers(
  settings: Settings,
  scope: TeamScope,
  day: string,
  commits: readonly Commit[],
  pullRequests: readonly PullRequest[],
): number {
  if (scope.headcount !== undefined) return scope.headcount;
  const window = windowEndingOn(day, settings.developerWindowDays, settings.timezone);
  const logins = loginByEmail(commits);
  const authors = new Set<string>();
  const count = (who: string) => {
    if (scope.members !== undefined && !scope.members.has(who)) return;
    authors.add(who);
  };
  for (const c of commits) {
    if (
      within(c.timestamp, window) &&
      settings.defaultBranches.includes(c.branch) &&
      inTeamRepositories(scope, c.repository) &&
      !commitIsBot(settings, c)
    ) {
      count(developerOf(c, logins));
    }
  }
  for (const pr of pullRequests) {
    if (
      within(pr.mergedAt, window) &&
      inTeamRepositories(scope, pr.repository) &&
      !(pr.isBot || isBot(settings, { login: pr.authorLogin }))
    )
      count(pr.authorLogin.toLowerCase());
  }
  return authors.size;
}

/** Successful production deploys of a team's services over the `days` days ending on `day`. */
export function successfulProductionDeploys(
  settings: Settings,
  scope: TeamScope,
  day: string,
  days: number,
  deploys: readonly Deploy[],
): number {
  const window = windowEndingOn(day, days, settings.timezone);
  return deploys.filter(
    (d) =>
      d.status === 'success' &&
      settings.productionEnvironments.includes(d.environment) &&
      within(d.finishedAt, window) &&
      deployOfTeam(settings, scope, d),
  ).length;
}

/** Deploys per developer per day over `days` ending on `day`; undefined for a team with no developers. */
export function deploysPerDeveloperPerDay(deploys: number, days: number, developers: number): number | undefined {
  return developers > 0 ? deploys / days / developers : undefined;
}

/**
 * Change failure rate over the 28 days ending on `day`: production deploys that failed, plus
 * successful ones rolled back (the next successful deploy of the service went back to an earlier
 * sha), over production deployments. `history` must reach back before the window, so a rollback's
 * earlier sha is known. Undefined when there were no deployments.
 */
export function changeFailureRate(
  settings: Settings,
  scope: TeamScope,
  day: string,
  history: readonly Deploy[],
  days = 28,
): { rate: number; failed: number; rolledBack: number; deployments: number } | undefined {
  const window = windowEndingOn(day, days, settings.timezone);
  const production = history.filter((d) => isProductionDeployment(settings, d) && deployOfTeam(settings, scope, d));
  const inWindow = production.filter((d) => within(d.finishedAt, window));
  if (inWindow.length === 0) return undefined;
  const failed = inWindow.filter((d) => d.status === 'failure').length;
  let rolledBack = 0;
  const byTarget = new Map<string, Deploy[]>();
  for (const d of production.filter((d) => d.status === 'success')) {
    const key = `${d.service}\n${d.environment}`;
    const list = byTarget.get(key);
    if (list === undefined) byTarget.set(key, [d]);
    else list.push(d);
  }
  for (const successes of byTarget.values()) {
    successes.sort((a, b) => (a.finishedAt < b.finishedAt ? -1 : a.finishedAt > b.finishedAt ? 1 : 0));
    successes.forEach((deploy, i) => {
      const next = successes[i + 1];
      if (!within(deploy.finishedAt, window) || next?.commitSha === undefined || next.commitSha === deploy.commitSha)
        return;
      const earlier = new Set(successes.slice(0, i).map((d) => d.commitSha));
      if (earlier.has(next.commitSha)) rolledBack++;
    });
  }
  return { rate: (failed + rolledBack) / inWindow.length, failed, rolledBack, deployments: inWindow.length };
}

/** The q-th percentile (0–100) by the nearest-rank method; undefined for no values. */
export function percentile(values: readonly number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1))];
}

/**
 * Times to restore in a window: for each service in production, from the first failure after a
 * success to the next success, in seconds (the restore is counted when the success falls in the window).
 */
export function restoreTimes(
  settings: Settings,
  scope: TeamScope,
  history: readonly Deploy[],
  window: { from: string; to: string },
): number[] {
  const byTarget = new Map<string, Deploy[]>();
  for (const d of history) {
    if (!isProductionDeployment(settings, d) || !deployOfTeam(settings, scope, d)) continue;
    const key = `${d.service}\n${d.environment}`;
    const list = byTarget.get(key);
    if (list === undefined) byTarget.set(key, [d]);
    else list.push(d);
  }
  const times: number[] = [];
  for (const deploys of byTarget.values()) {
    deploys.sort((a, b) => (a.finishedAt < b.finishedAt ? -1 : a.finishedAt > b.finishedAt ? 1 : 0));
    let firstFailure: Deploy | undefined;
    for (const d of deploys) {
      if (d.status === 'failure') firstFailure ??= d;
      else if (d.status === 'success') {
        if (firstFailure !== undefined && within(d.finishedAt, window)) {
          times.push((Date.parse(d.finishedAt) - Date.parse(firstFailure.finishedAt)) / 1000);
        }
        firstFailure = undefined;
      }
    }
  }
  return times;
}

export { deployOfTeam, within };
