// The local Datadog in a process of its own, so that the load generator beside it does not slow
// its answers: prints its address, then one JSON line per DORA deployment it accepts, with the
// time it arrived (Date.now(), the machine's clock, as the sender's).
import { FakeDatadog } from '../test/support/datadog-server.ts';

const dd = await new FakeDatadog().start();
dd.onAccepted = (request) => {
  if (request.path !== '/api/v2/dora/deployment') return;
  const id = (request.body as { data?: { attributes?: { id?: string } } }).data?.attributes?.id ?? '';
  process.stdout.write(`${JSON.stringify({ id, at: Date.now() })}\n`);
};
process.stdout.write(`${dd.url}\n`);
process.on('SIGTERM', () => {
  void dd.stop().then(() => process.exit(0));
});
