import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Exporter } from '../../shared/export/exporter.ts';
import { createLogger } from '../../shared/log.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { RecordingSink } from '../support/recording-sink.ts';

const NOW = Date.parse('2026-12-03T12:00:00Z');
const settings = parseSettings({});
const logger = createLogger(() => undefined);

/**
 * Environments Datadog knows by name (DESIGN.md's built-in ones, with no configuration file), and
 * ones it tags `env:other`: `pre-prod`, a review app, and a literal `other` among them.
 */
const ENVIRONMENTS = ['production', 'staging', 'development', 'pre-prod', 'pr-17', 'other', 'sandbox-4'];
const KNOWN = new Set(['production', 'staging', 'development', 'test']);

const deployArb = fc.record({
  service: fc.constantFrom('billing', 'search', 'ledger'),
  environment: fc.constantFrom(...ENVIRONMENTS),
  status: fc.constantFrom('success', 'failure'),
  /** Minutes before now: a few buckets, so several deploys share one. */
  minutesAgo: fc.integer({ min: 1, max: 4 }),
  second: fc.integer({ min: 0, max: 59 }),
});

describe('devstats.deploys counts (issue 15: each count reads only its service and environment)', () => {
  test('the last count Datadog keeps per bucket is the number of deploys in it, env:other grouping every unknown environment', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(deployArb, { minLength: 1, maxLength: 25 }), async (deploys) => {
        const store = new SqliteStore(':memory:');
        const sink = new RecordingSink();
        const exporter = new Exporter({ store, sink, settings, logger, now: () => new Date(NOW) });
        const handle = createProcessor({ store, exporter, settings, logger, now: () => new Date(NOW) });
        // The reference: buckets counted from what was sent, with nothing of the exporter's code.
        const expected = new Map<string, number>();
        for (const [i, d] of deploys.entries()) {
          const minute = Math.floor((NOW - d.minutesAgo * 60_000) / 60_000) * 60_000;
          const finishedAt = new Date(minute + d.second * 1000).toISOString();
          const env = KNOWN.has(d.environment) ? d.environment : 'other';
          const key = `${d.service}|${env}|${d.status}|${minute / 1000}`;
          expected.set(key, (expected.get(key) ?? 0) + 1);
          const body = {
            service: d.service,
            environment: d.environment,
            status: d.status,
            startedAt: new Date(Date.parse(finishedAt) - 1000).toISOString(),
            finishedAt,
            id: `count-${i}`,
          };
          await handle({
            data: Buffer.from(JSON.stringify(body)),
            attributes: {
              source: 'ci',
              eventType: 'deployment',
              deliveryId: `ci:${d.service}:count-${i}`,
              receivedAt: new Date(NOW).toISOString(),
            },
          });
        }
        const kept = new Map<string, number>();
        for (const p of sink.series_.filter((p) => p.metric === 'devstats.deploys')) {
          const tag = (name: string) => p.tags.find((t) => t.startsWith(`${name}:`))?.slice(name.length + 1);
          kept.set(`${tag('service')}|${tag('env')}|${tag('status')}|${p.timestamp}`, p.value);
        }
        await store.close();
        assert.deepEqual(Object.fromEntries([...kept].sort()), Object.fromEntries([...expected].sort()));
      }),
      { numRuns: 60 },
    );
  });
});
