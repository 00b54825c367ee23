import type { Bus } from '../shared/bus/bus.ts';
import { MemoryBus } from '../shared/bus/memory.ts';
import { PubSubBus } from '../shared/bus/pubsub.ts';
import { type Config, ConfigError, loadConfig } from '../shared/config.ts';
import { createLogger, type Logger } from '../shared/log.ts';

/** What every target needs, built once per instance from the environment. */
export interface Runtime {
  config: Config;
  logger: Logger;
  bus: Bus;
}

export function createRuntime(env: Record<string, string | undefined>, logger: Logger = createLogger()): Runtime {
  const config = loadConfig(env);
  if (config.bus === 'pubsub') {
    const bus = new PubSubBus({ projectId: config.projectId, publishTimeoutMs: config.publishTimeoutMs });
    bus.warm();
    return { config, logger, bus };
  }
  return { config, logger, bus: new MemoryBus({ logger }) };
}

let runtime: Runtime | undefined;

/** The instance's runtime; a configuration error stops the process with a message naming the variable. */
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
