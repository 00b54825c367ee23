import { type CloudEvent, cloudEvent } from '@google-cloud/functions-framework';
import type { BusMessage } from '../shared/bus/bus.ts';
import { deliveryOf, pubsubMessageOf, topicOf } from '../shared/bus/pubsub-event.ts';
import { createProcessor, type ProcessOutcome } from '../shared/pipeline/process.ts';
import { instanceRuntime } from '../shared/pipeline/wiring.ts';
// The framework's body parsers bounded for CloudEvents: no inflation, at most 16 MiB.
import './local/raw-body.ts';

const runtime = instanceRuntime();
let processor: Promise<(message: BusMessage) => Promise<ProcessOutcome>> | undefined;

// The Pub/Sub target (Eventarc, one trigger per topic): returning acks the message; throwing has
// Pub/Sub redeliver it. The CloudEvent's source names the topic, which tells direct sources apart.
cloudEvent('process', async (event: CloudEvent<unknown>) => {
  const message = pubsubMessageOf(event.data);
  if (message === undefined) {
    runtime.logger.warn('not a Pub/Sub message; acknowledged', { eventId: event.id, type: event.type });
    return;
  }
  processor ??= runtime
    .backend()
    .then(({ store, exporter }) =>
      createProcessor({ store, exporter, settings: runtime.settings, logger: runtime.logger }),
    );
  const processMessage = await processor;
  await processMessage(deliveryOf(message, topicOf(event.source), runtime.settings.pubsubSources));
});
