import { MemoryBus } from '../shared/bus/memory.ts';
import { createProcessor } from '../shared/process.ts';
import { rollup } from '../shared/rollup.ts';
import { instanceRuntime } from './runtime.ts';

/**
 * Embedded mode: with the in-process queue, this process also runs `process` on what ingest
 * publishes, against the store the configuration names (SQLite by default), exporting to Datadog
 * (or, without DD_API_KEY, to files), and `rollup` on a timer, as Cloud Scheduler would.
 */
const runtime = instanceRuntime();
const { bus, config, settings, logger } = runtime;
if (bus instanceof MemoryBus) {
  const backend = runtime.backend();
  const processor = backend.then(({ store, exporter }) => createProcessor({ store, exporter, settings, logger }));
  bus.subscribe(config.rawTopic, async (delivery) => {
    const processMessage = await processor;
    await processMessage(delivery);
  });
  const tick = () => {
    backend
      .then(({ store, sink, exporter }) => rollup({ store, sink, exporter, settings, logger, now: () => new Date() }))
      .catch((error: unknown) => {
        logger.error('rollup failed; the next tick retries', { error: String(error) });
      });
  };
  setInterval(tick, config.rollupIntervalSeconds * 1000).unref();
}
