import { SqliteQueueBus } from '../../shared/bus/sqlite-queue.ts';
import { deliveryOf } from '../../shared/bus/pubsub-event.ts';
import { PubSubBus } from '../../shared/bus/pubsub.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { rollup } from '../../shared/pipeline/rollup.ts';
import { instanceRuntime, stopOnConfigError } from '../../shared/pipeline/wiring.ts';

/**
 * Local runs (`npm start`): this process also runs `process` on what ingest publishes, against the
 * store the configuration names (SQLite by default), exporting to Datadog (or, without DD_API_KEY,
 * to files), and `rollup` on a timer, as Cloud Scheduler would. The in-process queue keeps each
 * delivery on disk until it is handled (a restart picks up what a crash left); next to the Pub/Sub emulator (PUBSUB_EMULATOR_HOST) the topics and pull
 * subscriptions are created and drive both, direct-to-topic sources (Cloud Build, Spinnaker Echo's
 * publisher) included. On Cloud Functions none of this runs: Eventarc calls each target.
 */
const runtime = instanceRuntime();
const { bus, config, settings, logger, journal } = runtime;
const local = !config.onGoogleCloud;

if (local && (bus instanceof SqliteQueueBus || (bus instanceof PubSubBus && config.pubsubEmulatorHost !== undefined))) {
  const backend = runtime
    .backend()
    .catch(stopOnConfigError)
    .then((b) => {
      // This process is the only exporter of its SQLite file: what a killed run claimed is free again.
      const store = b.store as Partial<{ releaseAllClaims(): number }>;
      if (store.releaseAllClaims !== undefined) {
        try {
          const released = store.releaseAllClaims.call(b.store);
          if (released > 0) logger.info('export claims of an earlier run given back', { released });
        } catch (error) {
          // A full disk: the claims lapse by themselves; exports wait until there is room.
          logger.error('export claims of an earlier run could not be given back', { error: String(error) });
        }
      }
      return b;
    });
  const processor = backend.then(({ store, exporter }) => createProcessor({ store, exporter, settings, logger }));
  const runRollup = async () => {
    const { store, sink, exporter } = await backend;
    await rollup({
      store,
      sink,
      exporter,
      settings,
      logger,
      now: () => new Date(),
      ...(runtime.redeliverGithub ? { redeliverGithub: runtime.redeliverGithub } : {}),
    });
  };

  if (bus instanceof SqliteQueueBus) {
    bus.subscribe(config.rawTopic, async (delivery) => {
      const processMessage = await processor;
      journal?.processed(delivery.attributes, await processMessage(delivery), new Date().toISOString());
    });
    setInterval(() => {
      runRollup().catch((error: unknown) => {
        logger.error('rollup failed; the next tick retries', { error: String(error) });
      });
    }, config.rollupIntervalSeconds * 1000).unref();
  } else if (bus instanceof PubSubBus) {
    const onError = (error: unknown) => {
      logger.error('Pub/Sub delivery failed; it will be redelivered', { error: String(error) });
    };
    for (const topic of [config.rawTopic, ...Object.keys(settings.pubsubSources)]) {
      bus
        .subscribe(
          topic,
          `devstats-process-${topic}`,
          async (message) => {
            const processMessage = await processor;
            const delivery = deliveryOf(message, topic === config.rawTopic ? undefined : topic, settings.pubsubSources);
            journal?.processed(delivery.attributes, await processMessage(delivery), new Date().toISOString());
          },
          onError,
        )
        .catch(onError);
    }
    bus.subscribe(config.tickTopic, 'devstats-rollup', runRollup, onError).catch(onError);
    setInterval(() => {
      bus.publish(config.tickTopic, { data: Buffer.from('{}'), attributes: {} }).catch(onError);
    }, config.rollupIntervalSeconds * 1000).unref();
    logger.info('pulling from the Pub/Sub emulator', {
      host: config.pubsubEmulatorHost,
      topics: [config.rawTopic, ...Object.keys(settings.pubsubSources)].join(','),
    });
  }
}
