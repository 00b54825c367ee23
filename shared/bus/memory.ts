import { randomUUID } from 'node:crypto';
import type { Bus, BusMessage, Consumer, Delivery, Subscriber } from './bus.ts';
import type { Logger } from '../log.ts';

interface MemoryBusOptions {
  logger: Logger;
  /** Deliveries of one message before it is dead-lettered, as Pub/Sub's `maxDeliveryAttempts`. */
  maxAttempts?: number;
  /** Wait before the n-th redelivery: `retryDelayMs * 2^(n-1)`. */
  retryDelayMs?: number;
}

/**
 * The in-process stand-in for Pub/Sub in embedded mode: at-least-once delivery to the
 * consumer of a topic, redelivery with backoff when it throws, then a dead-letter list.
 * Messages published to a topic nobody consumes are kept until a consumer subscribes.
 */
export class MemoryBus implements Bus, Subscriber {
  readonly deadLetters: Delivery[] = [];
  private readonly consumers = new Map<string, Consumer>();
  private readonly backlog = new Map<string, Delivery[]>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly logger: Logger;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;

  constructor(options: MemoryBusOptions) {
    this.logger = options.logger;
    this.maxAttempts = options.maxAttempts ?? 5;
    this.retryDelayMs = options.retryDelayMs ?? 200;
  }

  publish(topic: string, message: BusMessage): Promise<string> {
    const delivery: Delivery = { ...message, id: randomUUID(), topic, attempt: 0 };
    if (this.consumers.has(topic)) {
      this.dispatch(delivery);
    } else {
      const waiting = this.backlog.get(topic);
      if (waiting === undefined) this.backlog.set(topic, [delivery]);
      else waiting.push(delivery);
    }
    return Promise.resolve(delivery.id);
  }

  subscribe(topic: string, consumer: Consumer): void {
    if (this.consumers.has(topic)) throw new Error(`topic ${topic} already has a consumer`);
    this.consumers.set(topic, consumer);
    const waiting = this.backlog.get(topic) ?? [];
    this.backlog.delete(topic);
    for (const delivery of waiting) this.dispatch(delivery);
  }

  /** Resolves once every message published so far has been handled or dead-lettered. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  async close(): Promise<void> {
    await this.drain();
  }

  private dispatch(delivery: Delivery): void {
    const run = this.deliver(delivery).finally(() => this.inFlight.delete(run));
    this.inFlight.add(run);
  }

  private async deliver(delivery: Delivery): Promise<void> {
    const consumer = this.consumers.get(delivery.topic);
    if (consumer === undefined) return;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      try {
        await consumer({ ...delivery, attempt });
        return;
      } catch (error) {
        const fields = { topic: delivery.topic, messageId: delivery.id, attempt, error: String(error) };
        if (attempt === this.maxAttempts) {
          this.deadLetters.push({ ...delivery, attempt });
          this.logger.error('message dead-lettered after its last delivery attempt', fields);
          return;
        }
        this.logger.warn('consumer failed; redelivering', fields);
        await new Promise((resolve) => setTimeout(resolve, this.retryDelayMs * 2 ** (attempt - 1)));
      }
    }
  }
}
