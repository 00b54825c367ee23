import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { ConfigError } from '../config-error.ts';
import { codeownersOf, parseCodeowners, teamSlug } from './ownership.ts';
import { parseSettings, type Settings } from './settings.ts';

/**
 * The configuration file, read (JSON or YAML), and the files its `owners:` names.
 */

/** Reads `DEVSTATS_CONFIG` (JSON, or YAML by extension or content); defaults when unset. */
export function loadSettings(path: string | undefined): Settings {
  if (path === undefined || path === '') return parseSettings({});
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`DEVSTATS_CONFIG: cannot read ${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    throw new ConfigError(
      `DEVSTATS_CONFIG ${path} is not valid ${/\.ya?ml$/i.test(path) ? 'YAML' : 'JSON'}: ${(error as Error).message}`,
    );
  }
  return applyOwners(parseSettings(value, path), path);
}

/**
 * `owners:` (DESIGN.md, "Configuration"): teams read from where an organisation already writes
 * them, merged under the explicit `teams:` (which win).
 *
 * - **CODEOWNERS** (`owners.codeowners`, a file, with `owners.repository` the repository it
 *   describes): each `@org/team` owner becomes a team (its slug), owning the paths whose last
 *   matching pattern names it (GitHub's rule); a path-owned service without a team takes the team
 *   that owns its first path.
 * - **Backstage** (`owners.backstage`, catalog-info.yaml files or folders of them): each
 *   `Component` becomes a service of the team `spec.owner` names (`group:default/payments` →
 *   `payments`), in the repository of its `github.com/project-slug` annotation; a
 *   `backstage.io/source-location` below the repository's root (`…/tree/main/services/billing/`)
 *   makes it a service owned by that folder's paths.
 */
export function applyOwners(settings: Settings, configPath: string | undefined): Settings {
  const owners = settings.owners;
  if (owners === undefined) return settings;
  const base = configPath === undefined ? process.cwd() : dirname(resolve(configPath));
  const teams = structuredClone(settings.teams);
  const services = { ...settings.services };
  const explicit = new Set(Object.keys(settings.teams));
  const listed = new Set(Object.values(settings.teams).flatMap((t) => t.services));
  const teamFor = (name: string) => (teams[name] ??= { services: [], repositories: [], members: [] });
  let ownerRules = settings.ownerRules;

  if (owners.codeowners !== undefined) {
    if (owners.repository === undefined)
      throw new ConfigError('owners.repository: the repository the CODEOWNERS file describes (owner/name) is required');
    const file = resolve(base, owners.codeowners);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new ConfigError(`owners.codeowners: cannot read ${file}: ${(error as Error).message}`);
    }
    ownerRules = [...ownerRules, ...parseCodeowners(text, owners.repository)];
    for (const rule of ownerRules)
      for (const owner of rule.owners) {
        const slug = teamSlug(owner);
        if (slug !== undefined && !explicit.has(slug)) teamFor(slug);
      }
  }

  if (owners.backstage !== undefined) {
    for (const file of catalogFiles(base, owners.backstage)) {
      let documents: unknown[];
      try {
        documents = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as unknown);
      } catch (error) {
        throw new ConfigError(`owners.backstage: ${file} is not valid YAML: ${(error as Error).message}`);
      }
      for (const entity of documents) {
        const component = componentOf(entity);
        if (component === undefined || listed.has(component.name)) continue;
        const team = component.owner;
        if (component.paths !== undefined && component.repository !== undefined) {
          services[component.name] = {
            repository: component.repository,
            paths: component.paths,
            ...(team !== undefined ? { team } : {}),
          };
        }
        if (team === undefined || explicit.has(team)) continue;
        const t = teamFor(team);
        if (!t.services.includes(component.name)) t.services.push(component.name);
        if (
          component.paths === undefined &&
          component.repository !== undefined &&
          !t.repositories.includes(component.repository)
        )
          t.repositories.push(component.repository);
      }
    }
  }

  const merged: Settings = { ...settings, teams, services, ownerRules };
  // A path-owned service no one names takes the CODEOWNERS team of its first path.
  for (const [name, s] of Object.entries(merged.services)) {
    if (s.team !== undefined || listed.has(name)) continue;
    const probe = (s.paths[0] ?? '').replace(/\*.*$/, '').replace(/\/?$/, '/x');
    const slug = codeownersOf(merged, s.repository, probe)
      .map(teamSlug)
      .find((t) => t !== undefined);
    if (slug !== undefined) merged.services[name] = { ...s, team: slug };
  }
  return merged;
}

function catalogFiles(base: string, entries: string | string[]): string[] {
  const files: string[] = [];
  const walk = (path: string) => {
    let stat;
    try {
      stat = statSync(path);
    } catch (error) {
      throw new ConfigError(`owners.backstage: cannot read ${path}: ${(error as Error).message}`);
    }
    if (stat.isDirectory()) {
      for (const entry of readdirSync(path).sort()) {
        const child = join(path, entry);
        if (statSync(child).isDirectory()) walk(child);
        else if (/^catalog-info.*\.ya?ml$/i.test(entry)) files.push(child);
      }
    } else files.push(path);
  };
  for (const entry of Array.isArray(entries) ? entries : [entries]) walk(resolve(base, entry));
  return files;
}

/** A Backstage Component: its name, owner team, repository and (below the root) paths. */
function componentOf(
  entity: unknown,
): { name: string; owner?: string; repository?: string; paths?: string[] } | undefined {
  if (typeof entity !== 'object' || entity === null) return undefined;
  const e = entity as {
    kind?: unknown;
    metadata?: { name?: unknown; annotations?: Record<string, unknown> };
    spec?: { owner?: unknown };
  };
  if (e.kind !== 'Component' || typeof e.metadata?.name !== 'string') return undefined;
  const annotations = e.metadata.annotations ?? {};
  const owner =
    typeof e.spec?.owner === 'string' ? e.spec.owner.replace(/^group:/, '').replace(/^.*\//, '') : undefined;
  const slug =
    typeof annotations['github.com/project-slug'] === 'string' ? annotations['github.com/project-slug'] : undefined;
  const location =
    typeof annotations['backstage.io/source-location'] === 'string'
      ? annotations['backstage.io/source-location']
      : undefined;
  // url:https://github.com/<owner>/<repo>/tree/<branch>/<path>/
  const match =
    location === undefined
      ? null
      : /github\.com\/([^/]+\/[^/]+?)(?:\.git)?(?:\/(?:tree|blob)\/[^/]+\/(.+?))?\/?$/.exec(location);
  const repository = slug ?? match?.[1];
  const folder = match?.[2];
  return {
    name: e.metadata.name,
    ...(owner !== undefined ? { owner } : {}),
    ...(repository !== undefined ? { repository } : {}),
    ...(folder !== undefined && folder !== '' ? { paths: [`${folder}/**`] } : {}),
  };
}
