import { promisify } from 'node:util';
import { gunzipSync, gzip } from 'node:zlib';

/** A message as it travels on a topic: the exact bytes received, and string attributes. */
export interface BusMessage {
  data: Buffer;
  attributes: Record<string, string>;
}

/** The attributes `ingest` puts on every message it publishes to `devstats-raw`. */
/** One message as a consumer gets it, from whichever bus. */
export interface Delivery extends BusMessage {
  id: string;
  topic: string;
  /** 1 for the first delivery. */
  attempt: number;
  /** When the bus took it (Pub/Sub's publishTime), where the bus says. */
  publishTime?: string;
}

/** Returning acknowledges the delivery; throwing has it delivered again (and dead-lettered in the end). */
export type Consumer = (delivery: Delivery) => Promise<void>;

export interface SubscribeOptions {
  /** The subscription's name, where the bus has subscriptions (Pub/Sub): `devstats-process-<topic>`. */
  subscription?: string;
  /** Told of a delivery that failed, or of the subscription failing; the delivery comes again. */
  onError?: (error: unknown) => void;
}

/** A bus that also delivers: the embedded queue, and Pub/Sub pulled next to its emulator. */
export interface Subscriber {
  subscribe(topic: string, consumer: Consumer, options?: SubscribeOptions): unknown;
}

export interface RawAttributes extends Record<string, string> {
  source: string;
  deliveryId: string;
  eventType: string;
  receivedAt: string;
}

export interface Bus {
  /** Resolves with the message id once the bus holds the message durably; rejects with PublishError otherwise. */
  publish(topic: string, message: BusMessage): Promise<string>;
  close(): Promise<void>;
}

/** A transient failure to hand a message on: ingest answers 503, so the sender retries. */
export class PublishError extends Error {
  override name = 'PublishError';
}

/** Rejects with a PublishError when `work` has not settled within `ms`. */
export async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new PublishError(`${what} did not answer within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Pub/Sub takes at most 10,000,000 bytes per message, and a body may be 25 MiB (GitHub's cap):
 * data over this is gzipped (webhook JSON shrinks five to twenty times) with an attribute saying so.
 */
const COMPRESS_ABOVE_BYTES = 4 * 1024 * 1024;
/** What a message's data may be after compression, leaving room for its attributes. */
export const MAX_MESSAGE_DATA_BYTES = 9_900_000;
/** Never inflate a message past this: no body within the cap inflates further. */
const MAX_INFLATED_BYTES = 64 * 1024 * 1024;

const gzipAsync = promisify(gzip);

export interface Packed {
  data: Buffer;
  attributes: Record<string, string>;
}

/**
 * The data as it goes on a topic: as it is, or gzipped with `contentEncoding: gzip` when large.
 * Only the gzip is asynchronous: an ordinary body is answered at once, with no promise made.
 */
export function packForTopic(data: Buffer): Packed | Promise<Packed> {
  if (data.length <= COMPRESS_ABOVE_BYTES) return { data, attributes: {} };
  return gzipAsync(data).then((gzipped) => ({ data: gzipped, attributes: { contentEncoding: 'gzip' } }));
}

/** A message's data as it was received at ingest. */
export function unpackFromTopic(message: BusMessage): Buffer {
  if (message.attributes.contentEncoding !== 'gzip') return message.data;
  return gunzipSync(message.data, { maxOutputLength: MAX_INFLATED_BYTES });
}
