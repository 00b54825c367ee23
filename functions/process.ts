import { type CloudEvent, cloudEvent } from '@google-cloud/functions-framework';
import { deliveryOf, pubsubMessageOf, topicOf } from '../shared/bus/pubsub-event.ts';
import { instanceRuntime } from '../shared/pipeline/wiring.ts';
// The framework's body parsers bounded for CloudEvents: no inflation, at most 16 MiB.
import './local/raw-body.ts';

const runtime = instanceRuntime();

// The Pub/Sub target (Eventarc, one trigger per topic): returning acks the message; throwing has
// Pub/Sub redeliver it. The CloudEvent's source names the topic, which tells direct sources apart.
cloudEvent('process', async (event: CloudEvent<unknown>) => {
  const message = pubsubMessageOf(event.data);
  if (message === undefined) {
    runtime.logger.warn('not a Pub/Sub message; acknowledged', { eventId: event.id, type: event.type });
    return;
  }
  const processMessage = await runtime.processor();
  await processMessage(deliveryOf(message, topicOf(event.source), runtime.settings.pubsubSources));
});
