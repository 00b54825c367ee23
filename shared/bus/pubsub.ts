import type { Message, PubSub, Subscription, Topic } from '@google-cloud/pubsub';
import {
  type Bus,
  type BusMessage,
  type Consumer,
  PublishError,
  type Subscriber,
  type SubscribeOptions,
  withTimeout,
} from './bus.ts';

interface PubSubBusOptions {
  projectId: string | undefined;
  /** How long a publish may take before ingest gives up and answers 503. */
  publishTimeoutMs: number;
}

/**
 * Google Cloud Pub/Sub, or its emulator when `PUBSUB_EMULATOR_HOST` is set (the client reads it).
 * The client library is imported on first use: it is heavy, and only the Pub/Sub bus needs it.
 */
export class PubSubBus implements Bus, Subscriber {
  private client: Promise<PubSub> | undefined;
  private readonly topics = new Map<string, Topic>();
  private readonly subscriptions: Subscription[] = [];
  /**
   * Topics this bus is subscribing to, until their subscriptions exist: Pub/Sub never delivers a
   * message published before, so a publish to one of them waits (at most a publish's time).
   */
  private readonly subscribing = new Map<string, Promise<unknown>>();
  private readonly options: PubSubBusOptions;

  constructor(options: PubSubBusOptions) {
    this.options = options;
  }

  /** Starts loading the client library now, so the first request does not wait for it. */
  warm(): void {
    void this.pubsub().catch(() => undefined);
  }

  async publish(topicName: string, message: BusMessage): Promise<string> {
    const subscribing = this.subscribing.get(topicName);
    if (subscribing !== undefined)
      await withTimeout(subscribing, this.options.publishTimeoutMs, `the subscription to ${topicName}`);
    const topic = await this.topic(topicName);
    try {
      return await withTimeout(
        topic.publishMessage(message),
        this.options.publishTimeoutMs,
        `Pub/Sub topic ${topicName}`,
      );
    } catch (error) {
      if (error instanceof PublishError) throw error;
      throw new PublishError(`Pub/Sub refused the message for ${topicName}: ${(error as Error).message}`);
    }
  }

  /**
   * Pulls from a subscription to `topic` (both created when missing): what `npm start` does next
   * to the emulator, with Pub/Sub's real delivery semantics. A handler that returns acks the
   * message; one that throws nacks it, so Pub/Sub redelivers it. Publishes to the topic from this
   * bus wait until the subscription exists.
   */
  subscribe(topicName: string, consumer: Consumer, options: SubscribeOptions = {}): Promise<Subscription> {
    const subscribed = this.pull(
      topicName,
      options.subscription ?? `devstats-process-${topicName}`,
      consumer,
      options.onError ?? (() => undefined),
    );
    const waiting = Promise.allSettled([this.subscribing.get(topicName), subscribed]).then(() => {
      if (this.subscribing.get(topicName) === waiting) this.subscribing.delete(topicName);
    });
    this.subscribing.set(topicName, waiting);
    return subscribed;
  }

  private async pull(
    topicName: string,
    subscriptionName: string,
    consumer: Consumer,
    onError: (error: unknown) => void,
  ): Promise<Subscription> {
    const pubsub = await this.pubsub();
    const topic = pubsub.topic(topicName);
    const [topicExists] = await topic.exists();
    if (!topicExists) await topic.create().catch(ignoreAlreadyExists);
    const { Duration } = await import('@google-cloud/pubsub');
    // Each lease extension asks for at most 30 s: the client would otherwise stretch it towards
    // 10 minutes after slow deliveries (a hanging Datadog), and what a killed process held would
    // wait that long to come back.
    const subscription = topic.subscription(subscriptionName, { maxAckDeadline: Duration.from({ seconds: 30 }) });
    const [subscriptionExists] = await subscription.exists();
    if (!subscriptionExists) await subscription.create({ ackDeadlineSeconds: 30 }).catch(ignoreAlreadyExists);
    subscription.on('message', (message: Message) => {
      consumer({
        id: message.id,
        topic: topicName,
        data: message.data,
        attributes: message.attributes,
        attempt: Math.max(1, message.deliveryAttempt),
        publishTime: message.publishTime.toISOString(),
      }).then(
        () => {
          message.ack();
        },
        (error: unknown) => {
          onError(error);
          message.nack();
        },
      );
    });
    subscription.on('error', onError);
    this.subscriptions.push(subscription);
    return subscription;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.subscriptions.map((s) => s.close()));
    if (this.client === undefined) return;
    const client = await this.client;
    // Pending publishes get as long as a publish may take, and no longer.
    const flushed = Promise.allSettled([...this.topics.values()].map((t) => t.flush()));
    await withTimeout(flushed, this.options.publishTimeoutMs, 'Pub/Sub flush').catch(() => undefined);
    await client.close();
  }

  /** The client, created once. Exposed for set-up code (topics, subscriptions) next to the emulator. */
  pubsub(): Promise<PubSub> {
    this.client ??= import('@google-cloud/pubsub').then(
      ({ PubSub }) => new PubSub(this.options.projectId === undefined ? {} : { projectId: this.options.projectId }),
    );
    return this.client;
  }

  private async topic(name: string): Promise<Topic> {
    const known = this.topics.get(name);
    if (known !== undefined) return known;
    const topic = (await this.pubsub()).topic(name, {
      // Concurrent deliveries share a request; a lone one waits at most 5 ms for company.
      batching: { maxMessages: 100, maxMilliseconds: 5, maxBytes: 9 * 1024 * 1024 },
      // Bound the library's own retries too, so a stopped Pub/Sub does not pile up pending publishes.
      gaxOpts: { timeout: this.options.publishTimeoutMs },
    });
    this.topics.set(name, topic);
    return topic;
  }
}

const ALREADY_EXISTS = 6;
function ignoreAlreadyExists(error: unknown): void {
  if ((error as { code?: number }).code !== ALREADY_EXISTS) throw error;
}
