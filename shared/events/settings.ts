import * as z from 'zod';
import { ConfigError } from '../config-error.ts';

/**
 * The configuration file (`DEVSTATS_CONFIG`, JSON or YAML): teams, their services and
 * repositories, and the maps from each source's names to services and environments.
 * Every field has a default, so DevStats runs without a file on name-based rules alone.
 */
/** A line of a CODEOWNERS file: its pattern, read as GitHub reads it, and its owners. */
export interface OwnerRule {
  repository: string;
  pattern: string;
  owners: string[];
}

/** A service owned by paths of a repository (a monorepo, a shared Terraform repository): globs, `**` for any depth. */
const PathService = z.object({
  repository: z.string().min(1),
  paths: z.array(z.string().min(1)).min(1),
});

const Team = z.object({
  /** Names, or `{ name, repository, paths }` for a service owned by paths. */
  services: z.array(z.union([z.string(), PathService.extend({ name: z.string().min(1) }).strict()])).default([]),
  repositories: z.array(z.string()).default([]),
  members: z.array(z.string()).default([]),
  headcount: z.number().positive().optional(),
});

export const Settings = z
  .object({
    timezone: z
      .string()
      .default('UTC')
      .refine((tz) => {
        try {
          new Intl.DateTimeFormat('en', { timeZone: tz });
          return true;
        } catch {
          return false;
        }
      }, 'not an IANA time zone'),
    productionEnvironments: z.array(z.string()).min(1).default(['production']),
    /** Extra names per canonical environment, beside the built-in prod/prd/stag/stg… rules. */
    environmentAliases: z.record(z.string(), z.array(z.string())).default({}),
    developerWindowDays: z.number().int().positive().default(28),
    /** Branches whose commits make an author an active developer (the repositories' default branches). */
    defaultBranches: z.array(z.string()).min(1).default(['main', 'master']),
    bots: z.array(z.string()).default([]),
    /**
     * What makes a shipped change a fix-forward (deployment rework): a pull request with one of these
     * labels, or from a branch matching one of these globs. Reverts always count.
     */
    hotfix: z
      .object({
        labels: z.array(z.string()).default(['hotfix', 'incident']),
        branches: z.array(z.string()).default(['hotfix/*']),
      })
      .default({ labels: ['hotfix', 'incident'], branches: ['hotfix/*'] }),
    teams: z.record(z.string(), Team).default({}),
    /** Services owned by paths, by name (a team's `services` may also declare them inline). */
    services: z.record(z.string(), PathService.extend({ team: z.string().optional() }).strict()).default({}),
    /**
     * Teams from where they are already written: a CODEOWNERS file (of `repository`; `@org/team`
     * owners become teams, their patterns their paths) and Backstage catalog-info.yaml files or
     * folders (`spec.owner`, `github.com/project-slug`, `backstage.io/source-location`). `teams:`
     * entries override what these say.
     */
    owners: z
      .object({
        codeowners: z.string().min(1).optional(),
        repository: z.string().min(1).optional(),
        backstage: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
      })
      .strict()
      .optional(),
    /** Environments a change is promoted through, in order, production last (`[staging, production]`). */
    stages: z.array(z.string().min(1)).default([]),
    spinnaker: z.object({ accounts: z.record(z.string(), z.string()).default({}) }).default({ accounts: {} }),
    terraform: z
      .object({
        workspaces: z.record(z.string(), z.object({ service: z.string(), environment: z.string() })).default({}),
      })
      .default({ workspaces: {} }),
    pubsubSources: z
      .record(z.string(), z.enum(['spinnaker', 'cloudbuild']))
      .default({ 'spinnaker-events': 'spinnaker', 'cloud-builds': 'cloudbuild' }),
    cloudbuild: z
      .object({
        deploys: z
          .array(
            z.object({
              trigger: z.string().optional(),
              tag: z.string().optional(),
              service: z.string(),
              environment: z.string(),
            }),
          )
          .default([]),
      })
      .default({ deploys: [] }),
    /** An incident without a deploy named is tied to its service's last production deploy this long before it. */
    incidentWindowHours: z.number().positive().default(24),
    /** A source with no delivery processed for this long is a data-quality finding (doctor, report, live view). */
    sourceSilenceHours: z.number().positive().default(72),
    incidents: z
      .object({
        /** Vendor service names (PagerDuty services, Datadog `service:` tags, labels) to DevStats services. */
        services: z.record(z.string(), z.string()).default({}),
        /** The GitHub issue label that makes an issue an incident. */
        githubLabel: z.string().min(1).default('incident'),
      })
      .default({ services: {}, githubLabel: 'incident' }),
    circleci: z
      .object({
        deploys: z
          .array(
            z.object({
              project: z.string().optional(),
              workflow: z.string(),
              service: z.string(),
              environment: z.string(),
            }),
          )
          .default([]),
        defaultEnvironment: z.string().default('production'),
        /** Project slugs (`gh/acme/infra-live`) `devstats backfill circleci` reads. */
        projects: z.array(z.string()).default([]),
      })
      .default({ deploys: [], defaultEnvironment: 'production', projects: [] }),
  })
  .strict()
  .transform((s) => {
    // One shape for the rest of the code: a team's services by name, every path rule in `services`.
    const services = { ...s.services };
    const teams: Record<string, { services: string[]; repositories: string[]; members: string[]; headcount?: number }> =
      {};
    for (const [team, t] of Object.entries(s.teams)) {
      teams[team] = {
        ...t,
        services: t.services.map((entry) => {
          if (typeof entry === 'string') return entry;
          services[entry.name] = { repository: entry.repository, paths: entry.paths, team };
          return entry.name;
        }),
      };
    }
    // CODEOWNERS rules, filled in by `loadSettings` from `owners` (files are read there, not here).
    const ownerRules: OwnerRule[] = [];
    return { ...s, teams, services, ownerRules };
  });
export type Settings = z.output<typeof Settings>;

/** Parses settings from a value (the parsed file); the error names the first failing field. */
export function parseSettings(value: unknown, origin = 'configuration'): Settings {
  const parsed = Settings.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.path.map(String).join('.') || '(root)';
  throw new ConfigError(`${origin}: ${field}: ${issue?.message ?? 'invalid'}`);
}

/**
 * Names of environments are read by whole tokens (`prod-eu-1` is prod, eu, 1), so `pre-prod`,
 * `non-prod`, `prod-test` and `live-test` are never production: a qualifier token wins.
 */
const PRODUCTION_TOKENS = new Set(['prod', 'prd', 'production', 'live']);
const STAGING_TOKENS = new Set(['stag', 'stg', 'staging']);
const DEVELOPMENT_TOKENS = new Set(['dev', 'development']);
const TEST_TOKENS = new Set(['test', 'testing', 'qa']);
/** Qualifiers that keep a name as it is (`pre-prod`, `non-prod`): not production, nor an alias. */
const NEGATING_TOKENS = new Set(['pre', 'non', 'not']);
/** Tokens an environment name may also hold: `prod-eu-west-1`, `preprod`, `uat`. */
const ENVIRONMENT_WORDS = new Set([
  ...PRODUCTION_TOKENS,
  ...STAGING_TOKENS,
  ...DEVELOPMENT_TOKENS,
  ...TEST_TOKENS,
  ...NEGATING_TOKENS,
  'preprod',
  'nonprod',
  'uat',
  'sandbox',
  'sbx',
  'perf',
  'demo',
  'preview',
  'canary',
]);
const REGION_WORDS = new Set([
  ...['eu', 'us', 'uk', 'ap', 'apac', 'emea', 'amer', 'na', 'sa', 'au', 'ca', 'jp', 'in', 'de', 'fr', 'global'],
  ...['west', 'east', 'north', 'south', 'central', 'northeast', 'northwest', 'southeast', 'southwest'],
]);

/** `Prod-EU_1` → prod, eu (digits after a word and lone numbers are not tokens of their own). */
function tokensOf(name: string): string[] {
  return name
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .map((t) => t.replace(/\d+$/, ''))
    .filter((t) => t !== '');
}

/** The built-in environment a name stands for, read by tokens; undefined when none. */
function builtInEnvironment(name: string): string | undefined {
  const tokens = tokensOf(name);
  if (tokens.some((t) => NEGATING_TOKENS.has(t))) return undefined;
  if (tokens.some((t) => STAGING_TOKENS.has(t))) return 'staging';
  if (tokens.some((t) => TEST_TOKENS.has(t))) return 'test';
  if (tokens.some((t) => DEVELOPMENT_TOKENS.has(t))) return 'development';
  if (tokens.some((t) => PRODUCTION_TOKENS.has(t))) return 'production';
  return undefined;
}

/** The environment a name stands for by the aliases (configured first, then built-in), if any. */
export function aliasedEnvironment(settings: Settings, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [environment, aliases] of Object.entries(settings.environmentAliases)) {
    if (lower === environment.toLowerCase() || aliases.some((a) => a.toLowerCase() === lower)) return environment;
  }
  const production = settings.productionEnvironments.find((p) => p.toLowerCase() === lower);
  if (production !== undefined) return production;
  return builtInEnvironment(lower);
}

/** Whether a name (a workspace's suffix, a workflow's word) is only an environment's words. */
export function isEnvironmentName(settings: Settings, name: string): boolean {
  const lower = name.toLowerCase();
  if (
    settings.productionEnvironments.some((p) => p.toLowerCase() === lower) ||
    Object.entries(settings.environmentAliases).some(
      ([environment, aliases]) => environment.toLowerCase() === lower || aliases.some((a) => a.toLowerCase() === lower),
    )
  )
    return true;
  const tokens = tokensOf(lower);
  return (
    tokens.some((t) => ENVIRONMENT_WORDS.has(t) && !NEGATING_TOKENS.has(t)) &&
    tokens.every((t) => ENVIRONMENT_WORDS.has(t) || REGION_WORDS.has(t))
  );
}

/** The canonical environment for a source's name of it: by the aliases, else the name itself in lower case. */
export function canonicalEnvironment(settings: Settings, name: string): string {
  return aliasedEnvironment(settings, name) ?? name.toLowerCase();
}

/** Environments Datadog tags by name; any other is `env:other`, so per-PR environments add no metrics. */
export function knownEnvironments(settings: Settings): ReadonlySet<string> {
  return new Set([
    ...settings.productionEnvironments,
    ...Object.keys(settings.environmentAliases),
    'production',
    'staging',
    'development',
    'test',
  ]);
}

/** Who wrote a commit or opened a pull request, as far as the source says. */
interface Author {
  login?: string | undefined;
  name?: string | undefined;
  email?: string | undefined;
}

/**
 * Bots never count as developers: a login or name ending in `[bot]` (GitHub Apps, and the
 * `<id>+<app>[bot]@users.noreply.github.com` email), a name ending in the word "bot" (`Renovate
 * Bot`), or the configured list, matched against the login, the name and the email.
 */
export function isBot(settings: Settings, author: Author): boolean {
  const values = [author.login, author.name, author.email].filter((v): v is string => v !== undefined && v !== '');
  const lower = values.map((v) => v.toLowerCase());
  if (author.login?.endsWith('[bot]') === true || author.name?.endsWith('[bot]') === true) return true;
  if (author.email !== undefined && /\[bot\]@/i.test(author.email)) return true;
  if (author.name !== undefined && /(^|[\s._-])bot$/i.test(author.name.trim())) return true;
  return settings.bots.some((b) => lower.includes(b.toLowerCase()));
}

const ownership = new WeakMap<Settings, { services: Map<string, string>; repositories: Map<string, string> }>();

/** The team that owns a service (by the teams' `services`), or of a repository; the first team listed wins. */
export function teamOf(settings: Settings, service: string, repository?: string): string | undefined {
  let owners = ownership.get(settings);
  if (owners === undefined) {
    owners = { services: new Map(), repositories: new Map() };
    for (const [team, t] of Object.entries(settings.teams)) {
      for (const s of t.services) if (!owners.services.has(s)) owners.services.set(s, team);
      for (const r of t.repositories) if (!owners.repositories.has(r)) owners.repositories.set(r, team);
    }
    // A path-owned service's team (given inline, or by CODEOWNERS), unless a team lists it.
    for (const [name, s] of Object.entries(settings.services))
      if (s.team !== undefined && !owners.services.has(name)) owners.services.set(name, s.team);
    ownership.set(settings, owners);
  }
  return owners.services.get(service) ?? (repository === undefined ? undefined : owners.repositories.get(repository));
}
