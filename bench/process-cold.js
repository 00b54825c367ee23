/* global process, console, Buffer, performance */
// One `process` cold start, as a fresh instance runs it (the built dist/): process start to the
// first message handled, its export to Datadog (DD_API_URL, a local server) included. With
// NAIVE=1 the whole Datadog client package is imported first, as `import … from '@datadog/…'` would.
if (process.env.NAIVE === '1') await import('@datadog/datadog-api-client');
const { createRuntime } = await import('../dist/functions/runtime.js');
const { createProcessor } = await import('../dist/shared/process.js');

const runtime = createRuntime(process.env, { debug() {}, info() {}, warn() {}, error() {} });
const { store, exporter } = await runtime.backend();
const handle = createProcessor({ store, exporter, settings: runtime.settings, logger: runtime.logger });
const now = new Date();
const body = {
  service: 'billing',
  environment: 'production',
  status: 'success',
  startedAt: new Date(now.getTime() - 60_000).toISOString(),
  finishedAt: now.toISOString(),
  id: `cold-${process.pid}`,
};
await handle({
  data: Buffer.from(JSON.stringify(body)),
  attributes: { source: 'ci', eventType: 'deployment', deliveryId: body.id, receivedAt: now.toISOString() },
});
console.log(JSON.stringify({ ms: performance.now() }));
await store.close();
