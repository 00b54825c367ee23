import type { Bus } from '../shared/bus/bus.ts';
import { MemoryBus } from '../shared/bus/memory.ts';
import { PubSubBus } from '../shared/bus/pubsub.ts';
import { type Config, ConfigError, loadConfig } from '../shared/config.ts';
import { createLogger, type Logger } from '../shared/log.ts';
import { loadSettings, type Settings } from '../shared/settings.ts';
import { openStore } from '../shared/store/open.ts';
import type { Store } from '../shared/store/store.ts';

/** What every target needs, built once per instance from the environment. */
export interface Runtime {
  config: Config;
  settings: Settings;
  logger: Logger;
  bus: Bus;
  /** Opened on first use: `ingest` never needs it. */
  store(): Promise<Store>;
}

export function createRuntime(env: Record<string, string | undefined>, logger: Logger = createLogger()): Runtime {
  const config = loadConfig(env);
  const settings = loadSettings(config.settingsPath);
  let store: Promise<Store> | undefined;
  const lazyStore = () => (store ??= openStore(config));
  if (config.bus === 'pubsub') {
    const bus = new PubSubBus({ projectId: config.projectId, publishTimeoutMs: config.publishTimeoutMs });
    bus.warm();
    return { config, settings, logger, bus, store: lazyStore };
  }
  return { config, settings, logger, bus: new MemoryBus({ logger }), store: lazyStore };
}

let runtime: Runtime | undefined;

/** The instance's runtime; a configuration error stops the process with a message naming the field. */
export function instanceRuntime(): Runtime {
  if (runtime !== undefined) return runtime;
  try {
    runtime = createRuntime(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`devstats: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  return runtime;
}
