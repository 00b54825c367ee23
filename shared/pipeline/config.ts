import * as z from 'zod';
import type { StoreChoice } from '../store/open.ts';
import { ConfigError } from '../config-error.ts';
import { SECRET_VARIABLES, type WebhookSource } from '../sources/registry.ts';
import type { DatadogConfig } from '../export/sink.ts';

type BusKind = 'pubsub' | 'memory';
type StoreKind = StoreChoice['store'];

export interface Config {
  /** Chosen by `DEVSTATS_BUS`, else Pub/Sub on Cloud Functions or next to its emulator, else in-process. */
  bus: BusKind;
  /** Chosen by `DEVSTATS_STORE`, else Firestore on Cloud Functions or next to its emulator, else SQLite. */
  store: StoreKind;
  /** `DEVSTATS_FIRESTORE_REST=1`: Firestore over REST, not gRPC (see FirestoreStore.connect). */
  firestoreRest: boolean;
  /** `DEVSTATS_CONFIG`: the settings file (teams, maps), or undefined for the defaults. */
  settingsPath: string | undefined;
  projectId: string | undefined;
  rawTopic: string;
  /** The topic Cloud Scheduler ticks `rollup` through. */
  tickTopic: string;
  /** The subscription that keeps what Pub/Sub dead-lettered, for `devstats replay`. */
  deadLetterSubscription: string;
  /** On Cloud Functions (`K_SERVICE` is set). */
  onGoogleCloud: boolean;
  /** The target this instance serves on Cloud Functions (`FUNCTION_TARGET`); undefined when it serves all. */
  functionTarget: string | undefined;
  /** `PUBSUB_EMULATOR_HOST`, when a Pub/Sub emulator stands in for Pub/Sub. */
  pubsubEmulatorHost: string | undefined;
  maxBodyBytes: number;
  /** The request bodies held in memory at once, all requests together (at least `maxBodyBytes`). */
  maxBodyBytesInFlight: number;
  publishTimeoutMs: number;
  /** Accepted secrets per source: one, or two during a rotation. Empty means the source is not set up. */
  secrets: Record<WebhookSource, readonly string[]>;
  /**
   * `<SECRET>_FILE`: a file holding a source's secrets (a Secret Manager volume), read again every
   * `secretTtlMs`, so a rotation reaches warm instances without a restart. Wins over the variable.
   */
  secretFiles: Partial<Record<WebhookSource, string>>;
  secretTtlMs: number;
  /** `DEVSTATS_INSECURE_DEV=1`: accept sources whose secret is unset (local experiments only). */
  insecureDev: boolean;
  dataDir: string;
  datadog: DatadogConfig;
  /** The history APIs `devstats backfill` reads, beside GitHub's. */
  backfill: {
    spinnakerGateUrl: string | undefined;
    spinnakerGateToken: string | undefined;
    spinnakerGateBasic: string | undefined;
    tfcToken: string | undefined;
    tfcOrganization: string | undefined;
    tfcUrl: string;
    circleciToken: string | undefined;
    circleciUrl: string;
    cloudbuildApiUrl: string | undefined;
    pagerdutyToken: string | undefined;
    pagerdutyUrl: string;
    opsgenieKey: string | undefined;
    opsgenieUrl: string;
  };
  /** GitHub's API, for `devstats redeliver github` (and hourly from rollup when hooks are named). */
  github: { token: string | undefined; apiUrl: string | undefined; hooks: string | undefined };
  /** Embedded mode: seconds between rollups (Cloud Scheduler does it every 5 minutes in the cloud). */
  rollupIntervalSeconds: number;
}

const positiveInt = z.coerce.number().int().positive();

/** Every request body in memory at once, however many requests: 64 MiB of a 512 MiB ingest instance. */
export const DEFAULT_MAX_BODY_BYTES_IN_FLIGHT = 64 * 1024 * 1024;

export const Env = z.object({
  DEVSTATS_BUS: z.enum(['pubsub', 'memory']).optional(),
  DEVSTATS_STORE: z.enum(['firestore', 'sqlite']).optional(),
  FIRESTORE_EMULATOR_HOST: z.string().optional(),
  DEVSTATS_FIRESTORE_REST: z.enum(['0', '1', 'true', 'false']).optional(),
  DEVSTATS_CONFIG: z.string().optional(),
  K_SERVICE: z.string().optional(),
  FUNCTION_TARGET: z.string().optional(),
  PUBSUB_EMULATOR_HOST: z.string().optional(),
  GOOGLE_CLOUD_PROJECT: z.string().optional(),
  DEVSTATS_RAW_TOPIC: z.string().min(1).default('devstats-raw'),
  DEVSTATS_TICK_TOPIC: z.string().min(1).default('devstats-tick'),
  DEVSTATS_DEAD_LETTER_SUBSCRIPTION: z.string().min(1).default('devstats-dead-letter-inspect'),
  // GitHub caps webhook payloads at 25 MB; anything bigger is not a delivery we want.
  DEVSTATS_MAX_BODY_BYTES: positiveInt.default(26_214_400),
  DEVSTATS_MAX_BODY_BYTES_IN_FLIGHT: positiveInt.default(DEFAULT_MAX_BODY_BYTES_IN_FLIGHT),
  // GitHub gives a webhook 10 s: answer 503 well before that when Pub/Sub does not confirm.
  DEVSTATS_PUBLISH_TIMEOUT_MS: positiveInt.default(5_000),
  DEVSTATS_INSECURE_DEV: z.enum(['0', '1', 'true', 'false', '']).optional(),
  DEVSTATS_DATA_DIR: z.string().min(1).default('.devstats'),
  DD_API_KEY: z.string().optional(),
  DD_APP_KEY: z.string().optional(),
  DD_SITE: z.string().default('datadoghq.com'),
  DD_API_URL: z.url().optional(),
  DEVSTATS_DD_TIMEOUT_MS: positiveInt.default(10_000),
  DEVSTATS_DD_RETRIES: z.coerce.number().int().nonnegative().default(4),
  DEVSTATS_DD_BACKOFF_MS: positiveInt.default(500),
  DEVSTATS_ROLLUP_INTERVAL_S: positiveInt.default(300),
  DEVSTATS_SECRET_TTL_MS: z.coerce.number().int().nonnegative().default(30_000),
  GITHUB_TOKEN: z.string().optional(),
  GITHUB_API_URL: z.url().optional(),
  DEVSTATS_GITHUB_HOOKS: z.string().optional(),
  SPINNAKER_GATE_URL: z.url().optional(),
  SPINNAKER_GATE_TOKEN: z.string().optional(),
  SPINNAKER_GATE_BASIC: z.string().optional(),
  TFC_TOKEN: z.string().optional(),
  TFC_ORGANIZATION: z.string().optional(),
  TFC_URL: z.url().default('https://app.terraform.io'),
  CIRCLECI_TOKEN: z.string().optional(),
  CIRCLECI_URL: z.url().default('https://circleci.com/api/v2'),
  CLOUDBUILD_API_URL: z.url().optional(),
  PAGERDUTY_API_TOKEN: z.string().optional(),
  PAGERDUTY_API_URL: z.url().default('https://api.pagerduty.com'),
  OPSGENIE_API_KEY: z.string().optional(),
  /** `https://api.eu.opsgenie.com` for an EU account. */
  OPSGENIE_API_URL: z.url().default('https://api.opsgenie.com'),
});

/** `GITHUB_WEBHOOK_SECRET_FILE` and the like: the secret variables' file forms. */
const SECRET_FILE_VARIABLES = Object.values(SECRET_VARIABLES).map((variable) => `${variable}_FILE`);

/** Every environment variable DevStats reads (Terraform must set no other). */
export const ENVIRONMENT_VARIABLES: readonly string[] = [
  ...Object.keys(Env.shape),
  ...Object.values(SECRET_VARIABLES),
  ...SECRET_FILE_VARIABLES,
];

/** Whether a source has a secret configured, in its variable or as a file (read when it is needed). */
export function hasSecret(
  config: Pick<Config, 'secrets'> & Partial<Pick<Config, 'secretFiles'>>,
  source: WebhookSource,
): boolean {
  return config.secrets[source].length > 0 || config.secretFiles?.[source] !== undefined;
}

/** A secret variable's (or file's) value: comma-separated during a rotation; blanks (`" , "`) are unset. */
export function secretList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Reads the configuration from the environment. Pure: the same env gives the same config. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  // Empty strings are how shells and Terraform say "unset".
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = Env.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`invalid environment variable ${String(issue?.path.join('.'))}: ${issue?.message}`);
  }
  const e = parsed.data;
  const onGoogleCloud = e.K_SERVICE !== undefined;
  const insecureDev = e.DEVSTATS_INSECURE_DEV === '1' || e.DEVSTATS_INSECURE_DEV === 'true';
  if (insecureDev && onGoogleCloud) {
    throw new ConfigError(
      'DEVSTATS_INSECURE_DEV is refused on Google Cloud (K_SERVICE is set): it would accept unsigned data from anyone',
    );
  }
  const secrets = Object.fromEntries(
    Object.entries(SECRET_VARIABLES).map(([source, variable]) => [source, secretList(env[variable])]),
  ) as Record<WebhookSource, string[]>;
  const secretFiles = Object.fromEntries(
    Object.entries(SECRET_VARIABLES)
      .map(([source, variable]) => [source, env[`${variable}_FILE`]] as const)
      .filter((entry): entry is readonly [string, string] => entry[1] !== undefined && entry[1] !== ''),
  ) as Partial<Record<WebhookSource, string>>;
  return {
    bus: e.DEVSTATS_BUS ?? (onGoogleCloud || e.PUBSUB_EMULATOR_HOST !== undefined ? 'pubsub' : 'memory'),
    store: e.DEVSTATS_STORE ?? (onGoogleCloud || e.FIRESTORE_EMULATOR_HOST !== undefined ? 'firestore' : 'sqlite'),
    firestoreRest: e.DEVSTATS_FIRESTORE_REST === '1' || e.DEVSTATS_FIRESTORE_REST === 'true',
    settingsPath: e.DEVSTATS_CONFIG,
    projectId: e.GOOGLE_CLOUD_PROJECT,
    rawTopic: e.DEVSTATS_RAW_TOPIC,
    tickTopic: e.DEVSTATS_TICK_TOPIC,
    deadLetterSubscription: e.DEVSTATS_DEAD_LETTER_SUBSCRIPTION,
    onGoogleCloud,
    functionTarget: e.FUNCTION_TARGET,
    pubsubEmulatorHost: e.PUBSUB_EMULATOR_HOST,
    maxBodyBytes: e.DEVSTATS_MAX_BODY_BYTES,
    maxBodyBytesInFlight: Math.max(e.DEVSTATS_MAX_BODY_BYTES_IN_FLIGHT, e.DEVSTATS_MAX_BODY_BYTES),
    publishTimeoutMs: e.DEVSTATS_PUBLISH_TIMEOUT_MS,
    secrets,
    secretFiles,
    secretTtlMs: e.DEVSTATS_SECRET_TTL_MS,
    insecureDev,
    dataDir: e.DEVSTATS_DATA_DIR,
    datadog: {
      apiKey: e.DD_API_KEY,
      appKey: e.DD_APP_KEY,
      site: e.DD_SITE,
      apiUrl: e.DD_API_URL,
      timeoutMs: e.DEVSTATS_DD_TIMEOUT_MS,
      retries: e.DEVSTATS_DD_RETRIES,
      backoffMs: e.DEVSTATS_DD_BACKOFF_MS,
      dataDir: e.DEVSTATS_DATA_DIR,
    },
    github: { token: e.GITHUB_TOKEN, apiUrl: e.GITHUB_API_URL, hooks: e.DEVSTATS_GITHUB_HOOKS },
    backfill: {
      spinnakerGateUrl: e.SPINNAKER_GATE_URL,
      spinnakerGateToken: e.SPINNAKER_GATE_TOKEN,
      spinnakerGateBasic: e.SPINNAKER_GATE_BASIC,
      tfcToken: e.TFC_TOKEN,
      tfcOrganization: e.TFC_ORGANIZATION,
      tfcUrl: e.TFC_URL,
      circleciToken: e.CIRCLECI_TOKEN,
      circleciUrl: e.CIRCLECI_URL,
      cloudbuildApiUrl: e.CLOUDBUILD_API_URL,
      pagerdutyToken: e.PAGERDUTY_API_TOKEN,
      pagerdutyUrl: e.PAGERDUTY_API_URL,
      opsgenieKey: e.OPSGENIE_API_KEY,
      opsgenieUrl: e.OPSGENIE_API_URL,
    },
    rollupIntervalSeconds: e.DEVSTATS_ROLLUP_INTERVAL_S,
  };
}
