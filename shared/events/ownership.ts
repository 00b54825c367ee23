import picomatch from 'picomatch';
import type { OwnerRule, Settings } from './settings.ts';

/**
 * Who owns which paths (DESIGN.md, "Services owned by paths"): a service declared as a repository
 * and path globs owns the commits of that repository that touched one of its paths; a team owns
 * the commits of its plain repositories, of its path-owned services' paths, and of the paths
 * CODEOWNERS gives it. A commit whose changed files are unknown belongs to every service and team
 * of its repository (and is a data-quality finding), never to none.
 */

/**
 * A CODEOWNERS pattern as a matcher (GitHub's syntax, gitignore's rules less `!` and `[ ]`): a
 * leading `/`, or a `/` inside, anchors it at the root, else it matches at any depth; a trailing
 * `/` matches a directory's contents; a pattern without one matches a file or a directory.
 */
export function codeownersMatcher(pattern: string): (path: string) => boolean {
  let p = pattern.trim();
  const directory = p.endsWith('/');
  if (directory) p = p.slice(0, -1);
  const anchored = p.startsWith('/') || p.includes('/');
  if (p.startsWith('/')) p = p.slice(1);
  const base = anchored ? p : `**/${p}`;
  const globs = directory ? [`${base}/**`] : [base, `${base}/**`];
  return picomatch(globs, { dot: true });
}

/** CODEOWNERS text to rules: comments and blank lines skipped, a line without owners kept (it unowns). */
export function parseCodeowners(text: string, repository: string): OwnerRule[] {
  const rules: OwnerRule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (line === '') continue;
    const [pattern = '', ...owners] = line.split(/\s+/);
    rules.push({ repository, pattern, owners });
  }
  return rules;
}

/** The team slug an owner names (`@acme/payments` → `payments`); a user (`@alice`) or an email names none. */
export const teamSlug = (owner: string): string | undefined => /^@[^/\s]+\/([^/\s]+)$/.exec(owner)?.[1];

interface Compiled {
  /** Path-owned services: their repository and matcher. */
  services: Map<string, { repository: string; match: (path: string) => boolean; team?: string }>;
  /** Repositories some path rule divides: their commits go by paths. */
  dividedRepositories: Set<string>;
  /** CODEOWNERS rules per repository, last first (the last matching pattern wins). */
  owners: Map<string, Array<{ match: (path: string) => boolean; owners: string[] }>>;
}

const compiled = new WeakMap<Settings, Compiled>();

function compile(settings: Settings): Compiled {
  let c = compiled.get(settings);
  if (c !== undefined) return c;
  c = { services: new Map(), dividedRepositories: new Set(), owners: new Map() };
  for (const [name, s] of Object.entries(settings.services)) {
    c.services.set(name, {
      repository: s.repository,
      match: picomatch(s.paths, { dot: true }),
      ...(s.team !== undefined ? { team: s.team } : {}),
    });
    c.dividedRepositories.add(s.repository);
  }
  for (const rule of settings.ownerRules) {
    const list = c.owners.get(rule.repository) ?? [];
    list.unshift({ match: codeownersMatcher(rule.pattern), owners: rule.owners });
    c.owners.set(rule.repository, list);
    c.dividedRepositories.add(rule.repository);
  }
  compiled.set(settings, c);
  return c;
}

/** The path rule of a service, when it has one. */
export function servicePathRule(
  settings: Settings,
  service: string,
): { repository: string; match: (path: string) => boolean } | undefined {
  return compile(settings).services.get(service);
}

/** Whether a repository's commits are divided by paths (a path-owned service or CODEOWNERS lives there). */
export function isDivided(settings: Settings, repository: string): boolean {
  return compile(settings).dividedRepositories.has(repository);
}

/**
 * Whether a commit is one of a service's changes: always, unless the service owns paths of the
 * commit's repository; then when one of the files it changed matches, or its files are unknown.
 */
export function isChangeOf(
  settings: Settings,
  service: string,
  commit: { repository: string; paths?: readonly string[] | undefined },
): boolean {
  const rule = servicePathRule(settings, service);
  if (rule === undefined || rule.repository !== commit.repository || commit.paths === undefined) return true;
  return commit.paths.some(rule.match);
}

const deployMatchers = new Map<string, (path: string) => boolean>();

/**
 * Whether a commit is one of a deploy's changes: by its service's path rule, else by the paths
 * the deploy's source gave (a Terraform workspace's working directory), else always.
 */
export function isChangeOfDeploy(
  settings: Settings,
  deploy: { service: string; repository?: string | undefined; paths?: readonly string[] | undefined },
  commit: { repository: string; paths?: readonly string[] | undefined },
): boolean {
  if (servicePathRule(settings, deploy.service) !== undefined) return isChangeOf(settings, deploy.service, commit);
  if (deploy.paths === undefined || deploy.repository !== commit.repository || commit.paths === undefined) return true;
  const key = deploy.paths.join('\n');
  let match = deployMatchers.get(key);
  if (match === undefined) {
    match = picomatch([...deploy.paths], { dot: true });
    if (deployMatchers.size < 1000) deployMatchers.set(key, match);
  }
  return commit.paths.some(match);
}

/** The owners CODEOWNERS gives a path of a repository (the last matching pattern's). */
export function codeownersOf(settings: Settings, repository: string, path: string): string[] {
  return (
    compile(settings)
      .owners.get(repository)
      ?.find((r) => r.match(path))?.owners ?? []
  );
}

/**
 * The teams a commit of a divided repository belongs to: the teams of the path-owned services it
 * touched, and the CODEOWNERS teams of its files. Undefined when its files are unknown (it then
 * belongs to every team that owns paths there).
 */
export function teamsOfPaths(
  settings: Settings,
  repository: string,
  paths: readonly string[] | undefined,
  teamOfService: (service: string) => string | undefined,
): Set<string> | undefined {
  if (paths === undefined) return undefined;
  const c = compile(settings);
  const teams = new Set<string>();
  for (const [name, s] of c.services) {
    if (s.repository !== repository || !paths.some(s.match)) continue;
    const team = s.team ?? teamOfService(name);
    if (team !== undefined) teams.add(team);
  }
  for (const path of paths)
    for (const owner of codeownersOf(settings, repository, path)) {
      const slug = teamSlug(owner);
      if (slug !== undefined) teams.add(slug);
    }
  return teams;
}

/** Every team that owns paths of a repository: who an unknown-files commit there belongs to. */
export function teamsOwningPathsIn(
  settings: Settings,
  repository: string,
  teamOfService: (service: string) => string | undefined,
): Set<string> {
  const c = compile(settings);
  const teams = new Set<string>();
  for (const [name, s] of c.services) {
    if (s.repository !== repository) continue;
    const team = s.team ?? teamOfService(name);
    if (team !== undefined) teams.add(team);
  }
  for (const rule of c.owners.get(repository) ?? [])
    for (const owner of rule.owners) {
      const slug = teamSlug(owner);
      if (slug !== undefined) teams.add(slug);
    }
  return teams;
}
