import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseSettings } from '../../shared/events/settings.ts';
import { Exporter } from '../../shared/export/exporter.ts';
import { memoryLogger } from '../../shared/log.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { buildReport, dayRange, type Report } from '../../shared/report/figures.ts';
import { renderHtml } from '../../shared/report/render.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { ciDeployment, githubPush } from '../support/fixtures.ts';
import { RecordingSink } from '../support/recording-sink.ts';

/*
 * Promotion through staging to production (issue 28), billing on 2026-11-20, by hand:
 *   07:00 c0 pushed · 08:00 production deploys c0 (the first deploy: ships its own push, c0, 1 h)
 *   09:00 c1 (alice) · 09:30 c2 (bob) pushed
 *   10:00 staging deploys c1 · 10:30 staging deploys c2 · 12:00 production deploys c2: ships c1, c2
 *   13:00 c3 pushed · 13:30 production deploys c3, no staging: a hotfix straight to production
 * Lead time to production: c0 1 h, c1 3 h, c2 2.5 h, c3 30 min. To staging: c1 1 h (10:00), c2 1 h (10:30).
 * Promotion time of the 12:00 deploy: c2's first staging deploy 10:30 → 12:00, 1.5 h.
 * First stage → production: c1 2 h, c2 1.5 h → p50 1.5 h. Straight to production: 2 (08:00, 13:30).
 */
const settings = parseSettings({
  stages: ['staging', 'production'],
  teams: { payments: { services: ['billing'], repositories: ['acme/billing'] } },
});
const at = (hhmm: string) => `2026-11-20T${hhmm}:00.000Z`;
const sha = (n: number) => n.toString(16).padStart(40, 'e');
let previous = '0'.repeat(40);
function push(n: number, author: string, time: string): Record<string, unknown> {
  const body = githubPush();
  const after = sha(n);
  Object.assign(body, {
    ref: 'refs/heads/main',
    before: previous,
    after,
    forced: false,
    commits: [{ id: after, message: `c${String(n)}`, timestamp: at(time), author: { name: author, username: author } }],
  });
  Object.assign(body.repository as Record<string, unknown>, {
    full_name: 'acme/billing',
    pushed_at: Date.parse(at(time)) / 1000,
  });
  previous = after;
  return body;
}
const deploy = (environment: string, commit: string, time: string) =>
  ciDeployment({
    id: `${environment}-${time}`,
    environment,
    commitSha: commit,
    startedAt: new Date(Date.parse(at(time)) - 60_000).toISOString(),
    finishedAt: at(time),
  });
const deliveries: Array<[string, string, Record<string, unknown>, string]> = [
  ['github', 'push', push(0, 'erin', '07:00'), '07:00'],
  ['ci', 'deployment', deploy('production', sha(0), '08:00'), '08:00'],
  ['github', 'push', push(1, 'alice', '09:00'), '09:00'],
  ['github', 'push', push(2, 'bob', '09:30'), '09:30'],
  ['ci', 'deployment', deploy('staging', sha(1), '10:00'), '10:00'],
  ['ci', 'deployment', deploy('staging', sha(2), '10:30'), '10:30'],
  ['ci', 'deployment', deploy('production', sha(2), '12:00'), '12:00'],
  ['github', 'push', push(3, 'carol', '13:00'), '13:00'],
  ['ci', 'deployment', deploy('production', sha(3), '13:30'), '13:30'],
];

describe('promotion through environments: stages [staging, production]', () => {
  const store = new SqliteStore(':memory:');
  const sink = new RecordingSink();
  let report: Report;
  before(async () => {
    let clock = at('07:00');
    const now = () => new Date(Date.parse(clock) + 120_000);
    const logger = memoryLogger();
    const exporter = new Exporter({ store, sink, settings, logger, now });
    const processMessage = createProcessor({ store, settings, logger, exporter, now });
    for (const [i, [source, eventType, body, time]] of deliveries.entries()) {
      clock = at(time);
      const outcome = await processMessage({
        data: Buffer.from(JSON.stringify(body)),
        attributes: { source, eventType, deliveryId: `p${String(i)}`, receivedAt: now().toISOString() },
      });
      assert.equal(outcome.outcome, 'stored');
    }
    report = await buildReport(store, settings, {
      period: dayRange('2026-11-20', '2026-11-20'),
      comparison: dayRange('2026-11-19', '2026-11-19'),
      now: new Date('2026-11-21T08:00:00Z'),
    });
  });
  after(() => store.close());
  const values = (metric: string, tag: string) =>
    sink.points
      .filter((p) => p.metric === metric && p.tags.includes(tag))
      .flatMap((p) => p.values)
      .sort((a, b) => a - b);

  test('Datadog: devstats.lead_time per stage, devstats.promotion_time {service, team, from, to} once per promoted sha', () => {
    assert.deepEqual(values('devstats.lead_time', 'env:production'), [1800, 3600, 9000, 10800]);
    assert.deepEqual(values('devstats.lead_time', 'env:staging'), [3600, 3600]);
    const promotions = sink.points.filter((p) => p.metric === 'devstats.promotion_time');
    assert.deepEqual(
      promotions.map((p) => [p.values, p.tags]),
      [[[5400], ['service:billing', 'team:payments', 'from:staging', 'to:production']]],
    );
  });

  test('the report shows where the time goes, and the hotfix that skipped staging', () => {
    const payments = report.teams.find((t) => t.team === 'payments')!.current;
    assert.deepEqual(payments.promotion, {
      commitToMergedP50: null,
      mergedToFirstStageP50: null,
      firstStageToProductionP50: 5400,
      leadTimeToFirstStageP50: 3600,
      promotionTimeP50: 5400,
      straightToProduction: 2,
    });
    assert.match(renderHtml(report), /First stage → production p50/);
  });
});
