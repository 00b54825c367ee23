/**
 * The ingest function in a process of its own, for tests that measure what a request costs it:
 * it prints its port, and answers `usage` messages with its resident set size (current and peak).
 */
import { memoryLogger } from '../../shared/log.ts';
import { startIngestServer } from './ingest-server.ts';
import { RecordingBus } from './recording-bus.ts';
import { everySource } from './signing.ts';

const bus = new RecordingBus();
const server = await startIngestServer({
  config: {
    maxBodyBytes: Number(process.env.MAX_BODY_BYTES ?? 26_214_400),
    secrets: everySource([process.env.SECRET ?? 's']),
    insecureDev: false,
    rawTopic: 'devstats-raw',
    projectId: undefined,
  },
  bus,
  logger: memoryLogger(),
});
process.on('message', (message) => {
  if (message === 'usage') {
    globalThis.gc?.();
    process.send?.({
      rss: process.memoryUsage().rss,
      maxRss: process.resourceUsage().maxRSS * 1024,
      heapUsed: process.memoryUsage().heapUsed,
      published: bus.published.length,
    });
  } else if (message === 'stop') {
    void server.close().then(() => process.exit(0));
  }
});
process.send?.({ url: server.url });
