import { MemoryBus } from '../shared/bus/memory.ts';
import { createProcessor } from '../shared/process.ts';
import { instanceRuntime } from './runtime.ts';

/**
 * Embedded mode: with the in-process queue, this process also runs `process` on what ingest
 * publishes, against the store the configuration names (SQLite by default).
 */
const runtime = instanceRuntime();
const { bus, config, settings, logger } = runtime;
if (bus instanceof MemoryBus) {
  const processor = runtime.store().then((s) => createProcessor({ store: s, settings, logger }));
  bus.subscribe(config.rawTopic, async (delivery) => {
    await (
      await processor
    )(delivery);
  });
}
