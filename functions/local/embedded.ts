import { deliveryOf } from '../../shared/bus/pubsub-event.ts';
import { instanceRuntime, stopOnConfigError } from '../../shared/pipeline/wiring.ts';

/**
 * Local runs (`npm start`): this process also runs `process` on what ingest publishes, against the
 * store the configuration names (SQLite by default), exporting to Datadog (or, without DD_API_KEY,
 * to files), and `rollup` on a tick, as Cloud Scheduler would. Both buses deliver the same way:
 * the in-process queue keeps each delivery on disk until it is handled (a restart picks up what a
 * crash left); next to the Pub/Sub emulator (PUBSUB_EMULATOR_HOST) the topics and pull
 * subscriptions are created and drive both, direct-to-topic sources (Cloud Build, Spinnaker Echo's
 * publisher) included. On Cloud Functions none of this runs: Eventarc calls each target.
 */
const runtime = instanceRuntime();
const { bus, config, settings, logger, journal } = runtime;

if (!config.onGoogleCloud && (config.bus === 'memory' || config.pubsubEmulatorHost !== undefined)) {
  // This process is the only exporter of a local store: what a killed run claimed is free again.
  runtime
    .backend()
    .catch(stopOnConfigError)
    .then(async ({ store }) => {
      const released = await store.releaseClaimsOfEarlierRun();
      if (released > 0) logger.info('export claims of an earlier run given back', { released });
    })
    .catch((error: unknown) => {
      // A full disk: the claims lapse by themselves; exports wait until there is room.
      logger.error('export claims of an earlier run could not be given back', { error: String(error) });
    });
  const onError = (error: unknown) => {
    logger.error('a delivery failed; it will be redelivered', { error: String(error) });
  };
  const topics = [config.rawTopic, ...Object.keys(settings.pubsubSources)];
  // Pub/Sub's subscribe is a promise (the topic and subscription are created first): its failure is logged, never unhandled.
  const subscribe = (...args: Parameters<typeof bus.subscribe>) => {
    Promise.resolve(bus.subscribe(...args)).catch(onError);
  };
  for (const topic of topics) {
    subscribe(
      topic,
      async (delivery) => {
        const processMessage = await runtime.processor();
        const direct = topic === config.rawTopic ? undefined : topic;
        const message = deliveryOf({ ...delivery, messageId: delivery.id }, direct, settings.pubsubSources);
        journal?.processed(message.attributes, await processMessage(message), new Date().toISOString());
      },
      { subscription: `devstats-process-${topic}`, onError },
    );
  }
  // A failed rollup is logged and acknowledged: the next tick retries it.
  subscribe(
    config.tickTopic,
    () =>
      runtime.rollup().then(
        () => undefined,
        (error: unknown) => {
          logger.error('rollup failed; the next tick retries', { error: String(error) });
        },
      ),
    { subscription: 'devstats-rollup', onError },
  );
  setInterval(() => {
    bus.publish(config.tickTopic, { data: Buffer.from('{}'), attributes: {} }).catch(onError);
  }, config.rollupIntervalSeconds * 1000).unref();
  if (config.bus === 'pubsub')
    logger.info('pulling from the Pub/Sub emulator', { host: config.pubsubEmulatorHost, topics: topics.join(',') });
}
