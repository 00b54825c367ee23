/**
 * docs/configuration.md, generated from the zod schemas (the configuration file's `Settings`, the
 * environment's `Env`, the sources' secret variables): every field with its type and default as
 * the schema says, and its meaning from the table below. `npm run docs` writes the page; a test
 * fails when the page and the schemas differ, or when a field has no meaning written here (or a
 * meaning is written for a field that is gone).
 *
 *   node scripts/configuration-doc.ts          # prints the page
 *   node scripts/configuration-doc.ts --write  # writes docs/configuration.md
 */
import { writeFileSync } from 'node:fs';
import { format, resolveConfig } from 'prettier';
import * as z from 'zod';
import { Settings } from '../shared/events/settings.ts';
import { Env } from '../shared/pipeline/config.ts';
import { SECRET_VARIABLES } from '../shared/sources/registry.ts';

/** What each field of the configuration file means (keys: the field's path, `*` for a name). */
export const SETTING_MEANINGS: Record<string, string> = {
  timezone: 'IANA time zone of the reporting days (day boundaries of every figure)',
  productionEnvironments: 'the environments that count as production',
  environmentAliases: 'extra names per canonical environment, read before the built-in token rules',
  developerWindowDays: 'a commit makes its author an active developer for this many days',
  defaultBranches: "branches whose commits make an author an active developer (the repositories' default branches)",
  bots: 'logins, names or emails that never count as developers (besides `[bot]` ones)',
  hotfix: 'what makes a shipped change a fix-forward (deployment rework); reverts always count',
  'hotfix.labels': 'pull request labels (any case)',
  'hotfix.branches': 'branch globs (a pull request’s head branch, or the branch a commit was pushed to)',
  teams: 'the teams, by name; `teams:` entries override what `owners:` says',
  'teams.*.services':
    'service names, or `{ name, repository, paths }` for a service owned by paths of a shared repository',
  'teams.*.repositories': "repositories whose commits count for the team's active developers",
  'teams.*.members': 'only these authors count for the team (logins, any case)',
  'teams.*.headcount': 'overrides the active-developer count',
  services: 'services owned by paths, by name: `{ repository, paths[] (globs), team? }`',
  'services.*.repository': 'the repository (`owner/name`)',
  'services.*.paths': 'globs of its paths (`terraform/network/**`); a commit touching one is the service’s',
  'services.*.team': 'its team, when no team lists it',
  owners: 'teams from where they are already written',
  'owners.codeowners': 'a CODEOWNERS file (relative to the configuration file): `@org/team` owners become teams',
  'owners.repository': 'the repository the CODEOWNERS file describes',
  'owners.backstage': 'Backstage catalog-info.yaml files, or folders of them: each Component a service of its owner',
  stages: 'environments a change is promoted through, in order, production last (`[staging, production]`)',
  spinnaker: 'Spinnaker',
  'spinnaker.accounts': 'deploy stage account → environment',
  terraform: 'HCP Terraform / Terraform Enterprise',
  'terraform.workspaces': 'workspace → `{ service, environment }` (else `<service>-<environment words>`)',
  pubsubSources: 'Pub/Sub topics `process` reads directly, and which source each carries',
  cloudbuild: 'Cloud Build',
  'cloudbuild.deploys': 'rules `{ trigger? | tag?, service, environment }` that make a build a deploy',
  incidentWindowHours: "an incident naming no deploy is tied to its service's last production deploy this long before",
  sourceSilenceHours: 'a source silent this long is a data-quality finding (report, live view, doctor)',
  incidents: 'incident sources',
  'incidents.services': 'vendor service names (PagerDuty services, Datadog `service:` tags, labels) → services',
  'incidents.githubLabel': 'the label that makes a GitHub issue an incident',
  circleci: 'CircleCI',
  'circleci.deploys': 'rules `{ project?, workflow, service, environment }` that make a workflow a deploy',
  'circleci.defaultEnvironment': 'the environment of a deploy workflow that names none',
  'circleci.projects': 'project slugs (`gh/acme/infra-live`) `devstats backfill circleci` reads',
};

/** What each environment variable means. */
export const ENV_MEANINGS: Record<string, string> = {
  DEVSTATS_BUS:
    '`pubsub` or `memory`; default `pubsub` on Cloud Functions (`K_SERVICE`) or with `PUBSUB_EMULATOR_HOST`, else `memory` (in-process, on disk)',
  DEVSTATS_STORE:
    '`firestore` or `sqlite`; default `firestore` on Cloud Functions or with `FIRESTORE_EMULATOR_HOST`, else `sqlite`',
  FIRESTORE_EMULATOR_HOST: '`host:port` of the Firestore emulator',
  DEVSTATS_FIRESTORE_REST:
    '`1` talks to Firestore over REST (HTTP/1.1), which carries every call DevStats makes and loads no gRPC; by default gRPC, measured the faster cold start against the emulator',
  DEVSTATS_CONFIG: 'the configuration file (JSON or YAML); unset: name-based defaults, no teams',
  K_SERVICE: 'set by Cloud Functions: running on Google Cloud',
  FUNCTION_TARGET: 'set by Cloud Functions: the target of this instance',
  PUBSUB_EMULATOR_HOST: '`host:port` of the Pub/Sub emulator',
  GOOGLE_CLOUD_PROJECT: 'the project id',
  DEVSTATS_RAW_TOPIC: 'the topic ingest publishes to',
  DEVSTATS_TICK_TOPIC: 'the topic Cloud Scheduler ticks `rollup` on',
  DEVSTATS_DEAD_LETTER_SUBSCRIPTION: "where `devstats replay` reads Pub/Sub's dead letters",
  DEVSTATS_MAX_BODY_BYTES: "the largest body taken, compressed or inflated (GitHub's 25 MB cap)",
  DEVSTATS_MAX_BODY_BYTES_IN_FLIGHT: 'every body and decoder window in memory at once; past it a 503',
  DEVSTATS_PUBLISH_TIMEOUT_MS: 'how long a publish may take before ingest answers 503',
  DEVSTATS_INSECURE_DEV: '`1` accepts sources whose secret is unset: local only (127.0.0.1; refused on Google Cloud)',
  DEVSTATS_DATA_DIR: 'where local runs keep their files (`devstats.sqlite`, `queue.sqlite`, `datadog/*.jsonl`)',
  DD_API_KEY: 'Datadog API key; unset: every request is written to `DEVSTATS_DATA_DIR/datadog/*.jsonl`',
  DD_APP_KEY: 'Datadog application key (`devstats dashboard push`, doctor)',
  DD_SITE: 'Datadog site (`datadoghq.eu`, `us5.datadoghq.com`, …)',
  DD_API_URL: 'base URL override, for a proxy or a test server (wins over `DD_SITE`)',
  DEVSTATS_DD_TIMEOUT_MS: 'timeout of one request to Datadog',
  DEVSTATS_DD_RETRIES: 'retries on network errors, timeouts, 429 and 5xx',
  DEVSTATS_DD_BACKOFF_MS: 'first retry delay, doubled each time',
  DEVSTATS_ROLLUP_INTERVAL_S: 'local runs: seconds between rollups',
  DEVSTATS_SECRET_TTL_MS: 'how often a secret file is read again (a rotation needs no restart)',
  GITHUB_TOKEN: "GitHub's API: `backfill github`, `redeliver github`, a divided repository's commit files",
  GITHUB_API_URL: 'GitHub Enterprise: its API URL (default `https://api.github.com`)',
  DEVSTATS_GITHUB_HOOKS: 'hooks to redeliver for: `repo:<owner>/<name>:<id>`, `org:<org>:<id>`, comma-separated',
  SPINNAKER_GATE_URL: '`backfill spinnaker`: Gate',
  SPINNAKER_GATE_TOKEN: "`backfill spinnaker`: Gate's Bearer token",
  SPINNAKER_GATE_BASIC: "`backfill spinnaker`: Gate's `user:password`",
  TFC_TOKEN: "HCP Terraform token: `backfill terraform`, and each run's commit (ingress attributes) at process time",
  TFC_ORGANIZATION: '`backfill terraform`: the organisation',
  TFC_URL: 'Terraform Enterprise: its URL',
  CIRCLECI_TOKEN: '`backfill circleci`: a personal API token',
  CIRCLECI_URL: "CircleCI's API",
  CLOUDBUILD_API_URL: '`backfill cloudbuild` against another endpoint (tests)',
  PAGERDUTY_API_TOKEN: '`backfill pagerduty`: a read-only REST API key',
  PAGERDUTY_API_URL: "PagerDuty's REST API",
  OPSGENIE_API_KEY: '`backfill opsgenie`: an API key with Read access',
  OPSGENIE_API_URL: "Opsgenie's API (`https://api.eu.opsgenie.com` for an EU account)",
};

/** Read outside the `Env` schema (by functions-framework, or by `npm start` alone). */
const OUTSIDE_ENV: Array<[string, string, string]> = [
  ['HOST', '`0.0.0.0` (`127.0.0.1` with `DEVSTATS_INSECURE_DEV`)', '`npm start`: the address to listen on'],
  ['PORT', '`8080`', 'the port (read by functions-framework)'],
];

type JsonSchema = {
  type?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  enum?: unknown[];
};

function typeOf(schema: JsonSchema): string {
  if (schema.enum !== undefined) return schema.enum.map((v) => JSON.stringify(v)).join(' or ');
  if (schema.anyOf !== undefined) return schema.anyOf.map(typeOf).join(' or ');
  if (schema.type === 'array')
    return schema.items?.anyOf !== undefined
      ? `(${typeOf(schema.items)})[]`
      : `${schema.items ? typeOf(schema.items) : 'value'}[]`;
  if (schema.type === 'object' && typeof schema.additionalProperties === 'object') return 'map';
  if (schema.type === 'object') return 'object';
  return schema.type ?? 'value';
}

const shown = (value: unknown) => (value === undefined ? '' : `\`${JSON.stringify(value)}\``);

/** Each field of an object schema, nested objects and maps' values included, by path. */
function fields(schema: JsonSchema, prefix = ''): Array<{ path: string; schema: JsonSchema }> {
  const out: Array<{ path: string; schema: JsonSchema }> = [];
  for (const [name, field] of Object.entries(schema.properties ?? {})) {
    const path = `${prefix}${name}`;
    out.push({ path, schema: field });
    if (field.properties !== undefined) out.push(...fields(field, `${path}.`));
    const values = field.additionalProperties;
    if (typeof values === 'object' && values.properties !== undefined && path !== 'services')
      out.push(...fields(values, `${path}.*.`).filter((f) => f.path in SETTING_MEANINGS));
    if (typeof values === 'object' && values.properties !== undefined && path === 'services')
      out.push(...fields(values, `${path}.*.`));
  }
  return out;
}

export function settingFields(): Array<{ path: string; schema: JsonSchema }> {
  return fields(z.toJSONSchema(Settings, { io: 'input', unrepresentable: 'any' }) as JsonSchema);
}

export function envVariables(): Array<{ name: string; schema: JsonSchema }> {
  const schema = z.toJSONSchema(Env, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return Object.entries(schema.properties ?? {}).map(([name, s]) => ({ name, schema: s }));
}

/** The page, formatted as `npm run check` wants every file (Prettier, the repository's options). */
export async function configurationDoc(): Promise<string> {
  const path = new URL('../docs/configuration.md', import.meta.url).pathname;
  return format(rawConfigurationDoc(), { ...(await resolveConfig(path)), parser: 'markdown' });
}

function rawConfigurationDoc(): string {
  const row = (cells: string[]) => `| ${cells.map((c) => c.replace(/(?<!\\)\|/g, '\\|')).join(' | ')} |`;
  const lines = [
    '# Configuration',
    '',
    '<!-- Generated by `npm run docs` (scripts/configuration-doc.ts) from the zod schemas: edit the schemas or the meanings there, not this page. -->',
    '',
    'DevStats reads one configuration file (`DEVSTATS_CONFIG`, JSON or YAML) and its environment. Every field and',
    'variable is optional. An invalid file or value stops the process at start (exit code 78) with a message naming',
    'the field, e.g. `devstats.yaml: teams.payments.services: expected array, received string`. `devstats doctor`',
    'checks both; `devstats teams` prints the team map they make.',
    '',
    '## The configuration file',
    '',
    row(['field', 'type', 'default', 'meaning']),
    row(['---', '---', '---', '---']),
    ...settingFields().map(({ path, schema }) =>
      row([`\`${path}\``, typeOf(schema), shown(schema.default), SETTING_MEANINGS[path] ?? '']),
    ),
    '',
    'A `*` stands for a name (a team, a service). A repository some path rule divides (a service owned by paths, or',
    'CODEOWNERS) counts its commits by the files they touched, for every team: see [metrics](metrics.md#services-owned-by-paths).',
    '',
    '## Environment variables',
    '',
    row(['variable', 'default', 'meaning']),
    row(['---', '---', '---']),
    ...Object.entries(SECRET_VARIABLES).map(([source, variable]) =>
      row([
        `\`${variable}\``,
        `unset: \`${source}\` refused (401)`,
        `the secret of ${source}; \`new,old\` during a rotation`,
      ]),
    ),
    row([
      '`<SECRET>_FILE`',
      'unset',
      'a file holding that secret (a Secret Manager volume), read again every `DEVSTATS_SECRET_TTL_MS`; wins over the variable',
    ]),
    ...envVariables().map(({ name, schema }) =>
      row([`\`${name}\``, shown(schema.default) || 'unset', ENV_MEANINGS[name] ?? '']),
    ),
    ...OUTSIDE_ENV.map(([name, fallback, meaning]) => row([`\`${name}\``, fallback, meaning])),
    '',
  ];
  return lines.join('\n');
}

if (import.meta.main) {
  const page = await configurationDoc();
  if (process.argv.includes('--write')) writeFileSync(new URL('../docs/configuration.md', import.meta.url), page);
  else process.stdout.write(page);
}
