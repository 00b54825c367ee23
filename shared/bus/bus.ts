/** A message as it travels on a topic: the exact bytes received, and string attributes. */
export interface BusMessage {
  data: Buffer;
  attributes: Record<string, string>;
}

/** The attributes `ingest` puts on every message it publishes to `devstats-raw`. */
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
