import { MemoryBus } from '../shared/bus/memory.ts';
import { instanceRuntime } from './runtime.ts';

/**
 * Embedded mode: with the in-process queue, this process also consumes what ingest publishes.
 * Until `process` exists, the consumer logs each accepted delivery.
 */
const { bus, config, logger } = instanceRuntime();
if (bus instanceof MemoryBus) {
  bus.subscribe(config.rawTopic, (delivery) => {
    logger.info('delivery received', {
      source: delivery.attributes.source,
      deliveryId: delivery.attributes.deliveryId,
      eventType: delivery.attributes.eventType,
      bytes: delivery.data.length,
    });
    return Promise.resolve();
  });
}
