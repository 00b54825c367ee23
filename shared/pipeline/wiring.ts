import type { Bus, BusMessage, Subscriber } from '../bus/bus.ts';
import type { ProcessOutcome } from './process.ts';
import { join } from 'node:path';
import { SqliteQueueBus } from '../bus/sqlite-queue.ts';
import { PubSubBus } from '../bus/pubsub.ts';
import { type Config, loadConfig } from './config.ts';
import { ConfigError } from '../config-error.ts';
import { createLogger, type Logger } from '../log.ts';
import { type Settings } from '../events/settings.ts';
import { loadSettings } from '../events/settings-file.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/store.ts';
import { Exporter } from '../export/exporter.ts';
import { DeliveryJournal } from './journal.ts';
import { createDatadogSink } from '../export/datadog-sink.ts';
import { type DatadogSink } from '../export/sink.ts';

/** What `process` and `rollup` need beyond the runtime: opened on first use, never by `ingest`. */
interface Backend {
  store: Store;
  sink: DatadogSink;
  exporter: Exporter;
}

/** The Datadog sink the configuration names, and the exporter that sends each stored fact once through it. */
export function exporterFor(
  store: Store,
  config: Pick<Config, 'datadog'>,
  settings: Settings,
  logger: Logger,
): { sink: DatadogSink; exporter: Exporter } {
  const sink = createDatadogSink(config.datadog, logger);
  return { sink, exporter: new Exporter({ store, sink, settings, logger, now: () => new Date() }) };
}

/** What every target needs, built once per instance from the environment. */
export interface Runtime {
  config: Config;
  settings: Settings;
  logger: Logger;
  bus: Bus & Subscriber;
  /** Opened on first use: `ingest` never needs it. */
  store(): Promise<Store>;
  /** The store, the Datadog sink and the exporter over both, built on first use. */
  backend(): Promise<Backend>;
  /** `process` over the backend, built on first use. */
  processor(): Promise<(message: BusMessage) => Promise<ProcessOutcome>>;
  /** One rollup now, over the backend (the scheduled target's work). */
  rollup(): Promise<unknown>;
  /** The latest deliveries, for the local live view; none on Google Cloud. */
  journal: DeliveryJournal | undefined;
  /** Redelivers GitHub's failed deliveries since a time, when DEVSTATS_GITHUB_HOOKS and GITHUB_TOKEN are set. */
  redeliverGithub: ((since: string) => Promise<unknown>) | undefined;
}

function createRuntime(env: Record<string, string | undefined>, logger: Logger = createLogger()): Runtime {
  const config = loadConfig(env);
  const settings = loadSettings(config.settingsPath);
  let store: Promise<Store> | undefined;
  let backend: Promise<Backend> | undefined;
  const lazyStore = () => (store ??= openStore(config));
  let processor: Promise<(message: BusMessage) => Promise<ProcessOutcome>> | undefined;
  const lazyBackend = () =>
    (backend ??= lazyStore().then((s) => ({ store: s, ...exporterFor(s, config, settings, logger) })));
  // `process` and `rollup` are imported on first use: ingest's cold start never loads them.
  const lazyProcessor = () =>
    (processor ??= Promise.all([lazyBackend(), import('./process.ts'), import('./enrich.ts')]).then(
      ([{ store, exporter }, { createProcessor }, { enrichersFor }]) =>
        createProcessor({ store, exporter, settings, logger, enrichers: enrichersFor(config) }),
    ));
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
  const runRollup = async () => {
    const [{ store, sink, exporter }, { rollup }] = await Promise.all([lazyBackend(), import('./rollup.ts')]);
    return rollup({
      store,
      sink,
      exporter,
      settings,
      logger,
      now: () => new Date(),
      ...(redeliverGithub ? { redeliverGithub } : {}),
    });
  };
  const common = {
    config,
    settings,
    logger,
    store: lazyStore,
    backend: lazyBackend,
    processor: lazyProcessor,
    rollup: runRollup,
    redeliverGithub,
    journal,
  };
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
