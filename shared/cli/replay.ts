import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { utc } from '../events/model.ts';
import { createLogger } from '../log.ts';
import { replayEmbedded, replayPubSub } from './dead-letters.ts';
import { exporterFor } from '../pipeline/wiring.ts';

import { type Command, withStore } from './command.ts';

const runReplay: Command['run'] = async (args, env, out) => {
  const { values } = parseArgs({
    args,
    options: {
      source: { type: 'string' },
      since: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      wait: { type: 'string', default: '5' },
    },
    strict: true,
  });
  const filter = { source: values.source, since: values.since === undefined ? undefined : utc(values.since) };
  const dryRun = values['dry-run'];
  const logger = createLogger(() => undefined);
  return withStore(env, async ({ store, settings, config }) => {
    let result;
    if (config.bus === 'pubsub') {
      const { PubSubBus } = await import('../bus/pubsub.ts');
      const bus = new PubSubBus({ projectId: config.projectId, publishTimeoutMs: config.publishTimeoutMs });
      try {
        result = await replayPubSub(
          bus,
          {
            subscription: config.deadLetterSubscription,
            rawTopic: config.rawTopic,
            pubsubSources: settings.pubsubSources,
            waitMs: Number(values.wait) * 1000,
          },
          filter,
          dryRun,
        );
      } finally {
        await bus.close();
      }
    } else {
      const { SqliteQueueBus } = await import('../bus/sqlite-queue.ts');
      const queue = new SqliteQueueBus({ path: join(config.dataDir, 'queue.sqlite'), logger });
      try {
        result = await replayEmbedded(queue, filter, dryRun);
      } finally {
        await queue.close();
      }
    }
    for (const line of result.lines)
      out(
        `${dryRun ? 'would send' : 'sent'} ${line.source.padEnd(10)} ${line.deliveryId}  received ${line.receivedAt}, ${line.attempts} attempts${line.error ? `: ${line.error}` : ''}`,
      );
    out(`${result.lines.length} of ${result.found} dead letters ${dryRun ? 'would be sent' : 'sent'} again`);
    const parked = await store.parkedExports(10_000);
    if (dryRun) {
      out(`${parked.length} parked exports would be tried again`);
      return;
    }
    const unparked = await store.unparkExports();
    if (unparked > 0) {
      const { exporter } = exporterFor(store, config, settings, logger);
      await exporter.retryPending();
      const still = (await store.parkedExports(10_000)).length;
      out(`${unparked} parked exports tried again: ${unparked - still} sent, ${still} refused again`);
    }
  });
};

export const replayCommand: Command = {
  name: 'replay',
  help: [
    {
      synopsis: ['replay [--source S] [--since ISO-8601] [--dry-run]'],
      summary: [
        "send the dead letters again (the embedded queue's, or Pub/Sub's dead-letter subscription), and",
        'give parked exports another try; what was stored already is stored once',
      ],
    },
  ],
  examples: ['npm run devstats -- replay --dry-run'],
  run: runReplay,
};
