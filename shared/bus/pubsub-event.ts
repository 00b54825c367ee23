import * as z from 'zod';
import type { BusMessage } from './bus.ts';

/**
 * The data of the CloudEvent Eventarc delivers for a Pub/Sub message
 * (type google.cloud.pubsub.topic.v1.messagePublished).
 * https://cloud.google.com/eventarc/docs/cloudevents#pubsub
 */
const MessagePublished = z.object({
  message: z.object({
    data: z.string().default(''),
    attributes: z.record(z.string(), z.string()).nullish(),
    messageId: z.string().optional(),
    publishTime: z.string().optional(),
  }),
  subscription: z.string().optional(),
});

/** The topic a CloudEvent's `source` names: `//pubsub.googleapis.com/projects/<p>/topics/<topic>`. */
export function topicOf(source: string | undefined): string | undefined {
  return source?.match(/\/topics\/([^/]+)$/)?.[1];
}

interface PubSubMessage {
  data: Buffer;
  attributes: Record<string, string>;
  messageId?: string | undefined;
  publishTime?: string | undefined;
}

export function pubsubMessageOf(data: unknown): PubSubMessage | undefined {
  const parsed = MessagePublished.safeParse(data);
  if (!parsed.success) return undefined;
  const { message } = parsed.data;
  return {
    data: Buffer.from(message.data, 'base64'),
    attributes: message.attributes ?? {},
    messageId: message.messageId,
    publishTime: message.publishTime,
  };
}

/**
 * The raw delivery `process` handles. Messages from `ingest` carry their source as an attribute;
 * sources that publish straight to Pub/Sub (Spinnaker Echo's publisher, Cloud Build) are told
 * apart by the topic, through `pubsubSources`.
 */
export function deliveryOf(
  message: PubSubMessage,
  topic: string | undefined,
  pubsubSources: Readonly<Record<string, string>>,
): BusMessage {
  const direct = topic === undefined ? undefined : pubsubSources[topic];
  if (direct === undefined) return { data: message.data, attributes: message.attributes };
  return {
    data: message.data,
    attributes: {
      ...message.attributes,
      source: direct,
      eventType: message.attributes.status ?? message.attributes.eventType ?? 'message',
      deliveryId: message.messageId ?? message.attributes.buildId ?? '',
      ...(message.publishTime ? { receivedAt: message.publishTime } : {}),
    },
  };
}
