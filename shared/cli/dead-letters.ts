import type { Message } from '@google-cloud/pubsub';
import type { BusMessage } from '../bus/bus.ts';
import type { PubSubBus } from '../bus/pubsub.ts';
import type { DeadLetter, SqliteQueueBus } from '../bus/sqlite-queue.ts';

/**
 * `devstats replay`: deliveries that failed every attempt (dead letters), sent again. Replayed
 * messages keep their attributes, so `process` dedupes them as any redelivery: a fact already
 * stored is stored once. `--dry-run` shows what would be sent and sends nothing.
 */
interface ReplayFilter {
  source?: string | undefined;
  /** Only deliveries received at or after this UTC time. */
  since?: string | undefined;
}

interface ReplayLine {
  topic: string;
  source: string;
  deliveryId: string;
  receivedAt: string;
  attempts: number;
  error?: string;
}

interface ReplayResult {
  found: number;
  replayed: number;
  lines: ReplayLine[];
}

function matches(filter: ReplayFilter, line: ReplayLine): boolean {
  return (
    (filter.source === undefined || line.source === filter.source) &&
    (filter.since === undefined || line.receivedAt >= filter.since)
  );
}

/** The embedded mode's dead letters, from the queue's file. */
export async function replayEmbedded(
  queue: SqliteQueueBus,
  filter: ReplayFilter,
  dryRun: boolean,
): Promise<ReplayResult> {
  const letters: Array<[DeadLetter, ReplayLine]> = queue.deadLetters().map((letter) => [
    letter,
    {
      topic: letter.topic,
      source: letter.attributes.source ?? '',
      deliveryId: letter.attributes.deliveryId ?? letter.id,
      receivedAt: letter.attributes.receivedAt ?? letter.deadAt,
      attempts: letter.attempt,
      error: letter.error,
    },
  ]);
  const chosen = letters.filter(([, line]) => matches(filter, line));
  if (!dryRun) for (const [letter] of chosen) await queue.replay(letter);
  return { found: letters.length, replayed: dryRun ? 0 : chosen.length, lines: chosen.map(([, line]) => line) };
}

/** Attributes Pub/Sub adds when it dead-letters a message: not sent again. */
const DEAD_LETTER_ATTRIBUTE = /^CloudPubSubDeadLetter/;

/**
 * The topic a dead letter came from: Pub/Sub names its subscription in
 * `CloudPubSubDeadLetterSourceSubscription`, and infra/ names process's subscriptions
 * `devstats-process-<topic>`.
 */
export function originTopic(attributes: Record<string, string>, rawTopic: string): string {
  const subscription = attributes.CloudPubSubDeadLetterSourceSubscription ?? '';
  const topic = /^devstats-process-(.+)$/.exec(subscription.split('/').at(-1) ?? '')?.[1];
  return topic ?? rawTopic;
}

/**
 * Google Cloud's dead letters: pulled from the inspection subscription for `waitMs`, each published
 * again to the topic it came from and then acknowledged (a dry run leaves them all there).
 */
export async function replayPubSub(
  bus: PubSubBus,
  options: {
    subscription: string;
    rawTopic: string;
    pubsubSources: Readonly<Record<string, string>>;
    waitMs: number;
  },
  filter: ReplayFilter,
  dryRun: boolean,
): Promise<ReplayResult> {
  const pubsub = await bus.pubsub();
  const subscription = pubsub.subscription(options.subscription, { flowControl: { maxMessages: 1000 } });
  const pulled: Message[] = [];
  let collecting = true;
  // Removing the listener would close the subscription (and lose the acknowledgements): late
  // messages are handed back instead, for the next replay.
  subscription.on('message', (message: Message) => {
    if (collecting) pulled.push(message);
    else message.nack();
  });
  const failed = new Promise<never>((_, reject) => subscription.once('error', reject));
  await Promise.race([new Promise((resolve) => setTimeout(resolve, options.waitMs)), failed]);
  collecting = false;

  const result: ReplayResult = { found: pulled.length, replayed: 0, lines: [] };
  for (const message of pulled) {
    const topic = originTopic(message.attributes, options.rawTopic);
    const attributes = Object.fromEntries(
      Object.entries(message.attributes).filter(([name]) => !DEAD_LETTER_ATTRIBUTE.test(name)),
    );
    const line: ReplayLine = {
      topic,
      source: attributes.source ?? options.pubsubSources[topic] ?? '',
      deliveryId: attributes.deliveryId ?? message.id,
      receivedAt: attributes.receivedAt ?? message.publishTime.toISOString(),
      attempts: message.deliveryAttempt,
    };
    if (!matches(filter, line)) {
      message.nack();
      continue;
    }
    result.lines.push(line);
    if (dryRun) {
      message.nack();
      continue;
    }
    const again: BusMessage = { data: message.data, attributes };
    await bus.publish(topic, again);
    message.ack();
    result.replayed++;
  }
  await subscription.close(); // flushes the acknowledgements
  return result;
}
