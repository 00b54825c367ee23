// A fresh `process` instance: loads a target module (the esbuild bundle, or the source), then hands
// each message of DEVSTATS_MESSAGES (JSON: [{data, attributes}], data as a JSON value) to the
// registered `process` function as Eventarc would, one after the other, and exits.
import { Buffer } from 'node:buffer';

const [target = ''] = process.argv.slice(2);
await import(target);
const { getRegisteredFunction } = (await import(
  new URL('function_registry.js', import.meta.resolve('@google-cloud/functions-framework')).href
)) as { getRegisteredFunction: (name: string) => { userFunction: (event: unknown) => Promise<void> } };
const handler = getRegisteredFunction('process').userFunction;
const messages = JSON.parse(process.env.DEVSTATS_MESSAGES ?? '[]') as Array<{
  data: unknown;
  attributes: Record<string, string>;
}>;
for (const [i, { data, attributes }] of messages.entries()) {
  await handler({
    specversion: '1.0',
    id: String(i),
    type: 'google.cloud.pubsub.topic.v1.messagePublished',
    source: '//pubsub.googleapis.com/projects/devstats/topics/devstats-raw',
    data: { message: { data: Buffer.from(JSON.stringify(data)).toString('base64'), attributes, messageId: String(i) } },
  });
}
process.exit(0);
