/* global process, console, Buffer, performance, URL */
// One `process` cold start, as a fresh instance runs it: process start to the first message handled
// by the `process` target and exported to Datadog (DD_API_URL, a local server). The target is
// loaded as deployed (BUNDLE=1: dist/bundle/process.js, the esbuild bundle; else dist/functions/,
// tsc's output) and called with a Pub/Sub CloudEvent through functions-framework's registry. With NAIVE=1 the whole Datadog client package is imported
// first, as `import … from '@datadog/…'` would. Plain JavaScript: it loads the build as it is.
if (process.env.NAIVE === '1') await import('@datadog/datadog-api-client');
await import(
  { 1: '../dist/bundle/process.js', index: '../dist/bundle/index.js' }[process.env.BUNDLE ?? ''] ??
    '../dist/functions/process.js'
);
// The framework's registry, as its server reads it (not its `testing` export, which loads the
// HTTP server too: the same for any function, and measured beside a bare one in bench/ingest.ts).
const { getRegisteredFunction } = await import(
  new URL('function_registry.js', import.meta.resolve('@google-cloud/functions-framework')).href
);

const now = new Date();
const body = {
  service: 'billing',
  environment: 'production',
  status: 'success',
  startedAt: new Date(now.getTime() - 60_000).toISOString(),
  finishedAt: now.toISOString(),
  id: `cold-${process.pid}`,
};
const handler = getRegisteredFunction('process').userFunction;
await handler({
  specversion: '1.0',
  id: `cold-${process.pid}`,
  type: 'google.cloud.pubsub.topic.v1.messagePublished',
  source: '//pubsub.googleapis.com/projects/devstats/topics/devstats-raw',
  data: {
    message: {
      data: Buffer.from(JSON.stringify(body)).toString('base64'),
      attributes: { source: 'ci', eventType: 'deployment', deliveryId: body.id, receivedAt: now.toISOString() },
      messageId: '1',
    },
  },
});
console.log(JSON.stringify({ ms: performance.now() }));
process.exit(0);
