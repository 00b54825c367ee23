import { z } from 'zod';
import type { BusMessage } from './bus.ts';

/**
 * The data of the CloudEvent Eventarc delivers for a Pub/Sub message
 * (type google.cloud.pubsub.topic.v1.messagePublished).
 * https://cloud.google.com/eventarc/docs/cloudevents#pubsub
 */
const MessagePublished = z.object({
  message: z.object({
    data: z.string().default(''),
    attributes: z.record(z.string(), z.string()).default({}),
    messageId: z.string().optional(),
  }),
  subscription: z.string().optional(),
});

export function busMessageOf(data: unknown): BusMessage | undefined {
  const parsed = MessagePublished.safeParse(data);
  if (!parsed.success) return undefined;
  return { data: Buffer.from(parsed.data.message.data, 'base64'), attributes: parsed.data.message.attributes };
}
