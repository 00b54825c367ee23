import type { Commit, Deploy, Incident, PullRequest } from '../events/model.ts';
import { isDivided, teamsOfPaths, teamsOwningPathsIn } from '../events/ownership.ts';
import { isBot, type Settings, teamOf } from '../events/settings.ts';

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

const starts = new Map<string, Date>();

/**
 * The UTC instant a day starts at in `timezone`: the first instant whose local date is `day`.
 * Usually local midnight; where a zone jumps at midnight (America/Santiago, America/Havana, and
 * once Asia/Tehran) there is no midnight that day and the day starts at 01:00. Found by bisection
 * on the local date, which never goes backwards, so daylight saving rules need no table here.
 */
export function startOfDay(day: string, timezone: string): Date {
  const key = `${timezone} ${day}`;
  const known = starts.get(key);
  if (known !== undefined) return known;
  const [y = 0, m = 1, d = 1] = day.split('-').map(Number);
  const guess = Date.UTC(y, m - 1, d);
  // Every offset in use is within ±14 hours; one more day each side is ample.
  let low = guess - 38 * 3600_000; // local date before `day`
  let high = guess + 38 * 3600_000; // local date on or after `day`
  while (high - low > 1000) {
    const mid = low + Math.floor((high - low) / 2000) * 1000;
    if (dayOf(new Date(mid), timezone) < day) low = mid;
    else high = mid;
  }
  const start = new Date(high);
  starts.set(key, start);
  return start;
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

/** The teams a change of a divided repository belongs to, by its files (cached per change). */
const pathTeamsBySettings = new WeakMap<Settings, WeakMap<object, ReadonlySet<string>>>();

/**
 * Whether a change (a commit, or a pull request by its merge commit's files) is the team's: in a
 * repository divided by paths (DESIGN.md, "Services owned by paths"), by the files it touched,
 * whoever lists the repository (files unknown: every team owning paths there); else by the
 * team's repositories.
 */
function inTeamRepositories(
  settings: Settings,
  scope: TeamScope,
  change: { repository: string; paths?: readonly string[] | undefined },
  key: object = change,
): boolean {
  if (scope.repositories === undefined) return true;
  if (!isDivided(settings, change.repository)) return scope.repositories.has(change.repository);
  let pathTeams = pathTeamsBySettings.get(settings);
  if (pathTeams === undefined) pathTeamsBySettings.set(settings, (pathTeams = new WeakMap()));
  let teams = pathTeams.get(key);
  if (teams === undefined) {
    const teamOfService = (service: string) => teamOf(settings, service);
    teams =
      teamsOfPaths(settings, change.repository, change.paths, teamOfService) ??
      teamsOwningPathsIn(settings, change.repository, teamOfService);
    pathTeams.set(key, teams);
  }
  return teams.has(scope.name);
}

// ---- the definitions -------------------------------------------------------------------------

/** A deploy that counts as a production deployment: to production, not cancelled, not dated in the future. */
export function isProductionDeployment(settings: Settings, deploy: Deploy): boolean {
  return (
    settings.productionEnvironments.includes(deploy.environment) &&
    deploy.status !== 'cancelled' &&
    deploy.futureDated !== true
  );
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

/**
 * Commits by `repository@sha`, built once per list (a report asks for each team's developers on
 * every day of two periods, over the same commits: building it per call took a quarterly report of
 * 500 developers from 4 s to minutes).
 */
const commitsByKey = new WeakMap<readonly Commit[], Map<string, Commit>>();
function commitByKey(commits: readonly Commit[]): Map<string, Commit> {
  let map = commitsByKey.get(commits);
  if (map === undefined) {
    map = new Map(commits.map((c) => [`${c.repository}@${c.sha}`, c]));
    commitsByKey.set(commits, map);
  }
  return map;
}

/** Who a commit's author is: the login, else the login the same email goes with, else the email or name. */
function developerOf(commit: Commit, logins: ReadonlyMap<string, string>): string {
  if (commit.authorLogin !== undefined) return commit.authorLogin.toLowerCase();
  const email = commit.authorEmail?.toLowerCase();
  return (email === undefined ? undefined : (logins.get(email) ?? email)) ?? commit.authorName.toLowerCase();
}

export function commitIsBot(settings: Settings, c: Commit): boolean {
  return c.isBot || isBot(settings, { login: c.authorLogin, name: c.authorName, email: c.authorEmail });
}

/** A team's contributions (who, when), sorted by time: the same whatever the window asked. */
type Contributions = Array<{ at: string; who: string }>;
const contributionsOf = new WeakMap<
  readonly Commit[],
  WeakMap<readonly PullRequest[], WeakMap<Settings, WeakMap<TeamScope, Contributions>>>
>();

/**
 * Every non-bot commit on a default branch and every merged pull request of a team's (its
 * repositories or paths; only its members, when it lists them), by time. Built once per team and
 * history: a report asks for each team's developers on every day of two periods, and scanning
 * every commit each time took a quarterly report of 500 developers from 4 s to minutes.
 */
function teamContributions(
  settings: Settings,
  scope: TeamScope,
  commits: readonly Commit[],
  pullRequests: readonly PullRequest[],
): Contributions {
  let byPullRequests = contributionsOf.get(commits);
  if (byPullRequests === undefined) contributionsOf.set(commits, (byPullRequests = new WeakMap()));
  let bySettings = byPullRequests.get(pullRequests);
  if (bySettings === undefined) byPullRequests.set(pullRequests, (bySettings = new WeakMap()));
  let byScope = bySettings.get(settings);
  if (byScope === undefined) bySettings.set(settings, (byScope = new WeakMap()));
  const known = byScope.get(scope);
  if (known !== undefined) return known;
  const logins = loginByEmail(commits);
  // A pull request touched what its merge commit did.
  const mergeCommits = commitByKey(commits);
  const out: Contributions = [];
  const count = (at: string, who: string) => {
    if (scope.members !== undefined && !scope.members.has(who)) return;
    out.push({ at, who });
  };
  for (const c of commits) {
    if (
      settings.defaultBranches.includes(c.branch) &&
      inTeamRepositories(settings, scope, c) &&
      !commitIsBot(settings, c)
    )
      count(c.timestamp, developerOf(c, logins));
  }
  for (const pr of pullRequests) {
    if (
      inTeamRepositories(
        settings,
        scope,
        { repository: pr.repository, paths: mergeCommits.get(`${pr.repository}@${pr.mergeCommitSha}`)?.paths },
        pr,
      ) &&
      !(pr.isBot || isBot(settings, { login: pr.authorLogin }))
    )
      count(pr.mergedAt, pr.authorLogin.toLowerCase());
  }
  out.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  byScope.set(scope, out);
  return out;
}

/**
 * The developers of a team in a window: distinct non-bot authors of commits on a default branch or
 * of merged pull requests in the team's repositories (only the team's members, when it lists them).
 */
export function developersIn(
  settings: Settings,
  scope: TeamScope,
  window: { from: string; to: string },
  commits: readonly Commit[],
  pullRequests: readonly PullRequest[],
): Set<string> {
  const all = teamContributions(settings, scope, commits, pullRequests);
  // The first contribution at or after the window's start (binary search), then on while within it.
  let low = 0;
  let high = all.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((all[middle]?.at ?? '') < window.from) low = middle + 1;
    else high = middle;
  }
  const authors = new Set<string>();
  for (let i = low; i < all.length; i++) {
    const c = all[i];
    if (c === undefined || !within(c.at, window)) break;
    authors.add(c.who);
  }
  return authors;
}

/**
 * Active developers of a team on `day`: its developers during the trailing `developerWindowDays`
 * ending on `day`; or the team's `headcount`.
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
  return developersIn(settings, scope, window, commits, pullRequests).size;
}

/** A team's production deployments (successful or failed; cancelled ones count nowhere) finished in a window. */
export function productionDeploymentsIn(
  settings: Settings,
  scope: TeamScope,
  window: { from: string; to: string },
  deploys: readonly Deploy[],
): Deploy[] {
  return deploys.filter(
    (d) => isProductionDeployment(settings, d) && within(d.finishedAt, window) && deployOfTeam(settings, scope, d),
  );
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
  return productionDeploymentsIn(settings, scope, window, deploys).filter((d) => d.status === 'success').length;
}

/** Deploys per developer per day over `days` ending on `day`; undefined for a team with no developers. */
export function deploysPerDeveloperPerDay(deploys: number, days: number, developers: number): number | undefined {
  return developers > 0 ? deploys / days / developers : undefined;
}

/** Deploys in the order they finished (ties by id), the order every rule walks them in. */
export const byFinish = (a: Deploy, b: Deploy) =>
  a.finishedAt < b.finishedAt ? -1 : a.finishedAt > b.finishedAt ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;

// ---- incidents --------------------------------------------------------------------------------

/** Whether an incident happened in production (incidents elsewhere tie to no deploy and restore nothing). */
export function isProductionIncident(settings: Settings, incident: Incident): boolean {
  return settings.productionEnvironments.includes(incident.environment);
}

/**
 * The deploy a production incident is tied to: the deploy it names, when that deploy is known; else
 * the deploy of the sha it names (the last to finish before the incident started, else the first
 * after); else its service's latest successful production deploy that finished within
 * `incidentWindowHours` before the incident started; else none.
 */
export function linkedDeploy(settings: Settings, incident: Incident, deploys: readonly Deploy[]): Deploy | undefined {
  if (!isProductionIncident(settings, incident)) return undefined;
  if (incident.deployId !== undefined) {
    const named = deploys.find((d) => d.id === incident.deployId);
    if (named !== undefined) return named;
  }
  const shipped = deploys
    .filter((d) => d.status === 'success' && isProductionDeployment(settings, d))
    .filter((d) => incident.service === undefined || d.service === incident.service)
    .sort(byFinish);
  const { sha } = incident;
  if (sha !== undefined) {
    const ofSha = shipped.filter((d) => d.commitSha !== undefined && d.commitSha.startsWith(sha));
    const pick = ofSha.filter((d) => d.finishedAt <= incident.startedAt).at(-1) ?? ofSha[0];
    if (pick !== undefined) return pick;
  }
  if (incident.service === undefined) return undefined;
  const from = new Date(Date.parse(incident.startedAt) - settings.incidentWindowHours * 3600_000).toISOString();
  return shipped.filter((d) => d.finishedAt >= from && d.finishedAt <= incident.startedAt).at(-1);
}

/** The team of an incident: its service's, else its linked deploy's; `all` sees every incident. */
function incidentOfTeam(settings: Settings, scope: TeamScope, incident: Incident, linked?: Deploy): boolean {
  if (scope.name === ALL) return true;
  const team =
    (incident.service === undefined ? undefined : teamOf(settings, incident.service)) ??
    (linked === undefined ? undefined : teamOf(settings, linked.service, linked.repository));
  return team === scope.name;
}

/** Incidents with the deploy each is tied to (undefined: none), for one team. */
export function incidentLinks(
  settings: Settings,
  scope: TeamScope,
  incidents: readonly Incident[],
  deploys: readonly Deploy[],
): Array<{ incident: Incident; deploy: Deploy | undefined }> {
  return incidents
    .filter((incident) => isProductionIncident(settings, incident) && incident.withdrawn !== true)
    .map((incident) => ({ incident, deploy: linkedDeploy(settings, incident, deploys) }))
    .filter(({ incident, deploy }) => incidentOfTeam(settings, scope, incident, deploy));
}

/** The q-th percentile (0–100) by the nearest-rank method; undefined for no values. */
export function percentile(values: readonly number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1))];
}

export { deployOfTeam, within };
