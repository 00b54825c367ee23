import type { Bus } from '../bus/bus.ts';
import { join } from 'node:path';
import { SqliteQueueBus } from '../bus/sqlite-queue.ts';
import { PubSubBus } from '../bus/pubsub.ts';
import { type Config, loadConfig } from './config.ts';
import { ConfigError } from '../config-error.ts';
import { createLogger, type Logger } from '../log.ts';
import { loadSettings, type Settings } from '../events/settings.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/store.ts';
import { Exporter } from '../export/exporter.ts';
import { DeliveryJournal } from './journal.ts';
import { createDatadogSink, type DatadogSink } from '../export/datadog-sink.ts';

/** What `process` and `rollup` need beyond the runtime: opened on first use, never by `ingest`. */
export interface Backend {
  store: Store;
  sink: DatadogSink;
  exporter: Exporter;
}

/** What every target needs, built once per instance from the environment. */
export interface Runtime {
  config: Config;
  settings: Settings;
  logger: Logger;
  bus: Bus;
  /** Opened on first use: `ingest` never needs it. */
  store(): Promise<Store>;
  /** The store, the Datadog sink and the exporter over both, built on first use. */
  backend(): Promise<Backend>;
  /** The latest deliveries, for the local live view; none on Google Cloud. */
  journal: DeliveryJournal | undefined;
  /** Redelivers GitHub's failed deliveries since a time, when DEVSTATS_GITHUB_HOOKS and GITHUB_TOKEN are set. */
  redeliverGithub: ((since: string) => Promise<unknown>) | undefined;
}

export function createRuntime(env: Record<string, string | undefined>, logger: Logger = createLogger()): Runtime {
  const config = loadConfig(env);
  const settings = loadSettings(config.settingsPath);
  let store: Promise<Store> | undefined;
  let backend: Promise<Backend> | undefined;
  const lazyStore = () => (store ??= openStore(config));
  const lazyBackend = () =>
    (backend ??= lazyStore().then((s) => {
      const sink = createDatadogSink(config.datadog, logger);
      const exporter = new Exporter({ store: s, sink, settings, logger, now: () => new Date() });
      return { store: s, sink, exporter };
    }));
  const { token, apiUrl, hooks } = config.github;
  const redeliverGithub =
    token === undefined || hooks === undefined
      ? undefined
      : async (since: string) => {
          const [{ githubClient }, { parseHooks, redeliverFailed }] = await Promise.all([
            import('../github/client.ts'),
            import('../github/redeliver.ts'),
          ]);
          const octokit = await githubClient({ token, baseUrl: apiUrl, logger });
          return redeliverFailed(octokit, parseHooks(hooks), { since, dryRun: false, logger });
        };
  const journal = config.onGoogleCloud ? undefined : new DeliveryJournal();
  const common = { config, settings, logger, store: lazyStore, backend: lazyBackend, redeliverGithub, journal };
  if (config.bus === 'pubsub') {
    const bus = new PubSubBus({ projectId: config.projectId, publishTimeoutMs: config.publishTimeoutMs });
    // Only ingest publishes: process and rollup instances do not load the Pub/Sub client at start.
    if (config.functionTarget === undefined || config.functionTarget === 'ingest') bus.warm();
    return { ...common, bus };
  }
  // The embedded queue: in this process, on disk, so a delivery survives a crash after its 202.
  return { ...common, bus: new SqliteQueueBus({ path: join(config.dataDir, 'queue.sqlite'), logger }) };
}

let runtime: Runtime | undefined;

/**
 * A configuration error, or a data directory that cannot be written, stops the process with one
 * line naming the field or the file; anything else is thrown on.
 */
export function stopOnConfigError(error: unknown): never {
  if (error instanceof ConfigError) {
    process.stderr.write(`devstats: ${error.message}\n`);
    process.exit(78); // EX_CONFIG
  }
  throw error;
}

/** The instance's runtime; a configuration error stops the process with a message naming the field. */
export function instanceRuntime(): Runtime {
  if (runtime !== undefined) return runtime;
  try {
    runtime = createRuntime(process.env);
  } catch (error) {
    stopOnConfigError(error);
  }
  return runtime;
}
