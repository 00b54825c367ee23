import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Exporter } from '../../shared/export/exporter.ts';
import { memoryLogger } from '../../shared/log.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { buildReport, dayRange } from '../../shared/report/figures.ts';
import { teamScopes } from '../../shared/metrics/definitions.ts';
import { changeFailureRate, restoreTimes } from '../../shared/metrics/failures.ts';
import { rollup } from '../../shared/pipeline/rollup.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { FakeDatadog } from '../support/datadog-server.ts';
import { deployMessage } from '../support/history.ts';

/*
 * A known history of one service in production, worked out by hand:
 *   11:00 A (sha a) · 11:10 B (b) · 11:20 A again: a rollback, so B failed · 11:30 B again: a
 *   redeploy, not a rollback (b was first deployed after a) · 11:35 F (c) failed · 11:50 C (c)
 *   restores it · 11:52 a cancelled deploy · 11:53 a staging deploy.
 * Production deployments 6 (A, B, A', B', F, C); failed changes 2 (B rolled back, F failed):
 * change failure rate 1/3, not 1/2 (the rollback A' is no failure, nor is B'). Restores: B 11:10 →
 * 11:20 (600 s), F 11:35 → 11:50 (900 s).
 */
const NOW = new Date('2026-11-20T12:00:00.000Z');
const at = (hh: number, mm: number) => new Date(Date.UTC(2026, 10, 20, hh, mm)).toISOString();
const settings = parseSettings({ teams: { payments: { services: ['billing'], repositories: ['acme/billing'] } } });
const history = [
  deployMessage('A', 'a', at(11, 0)),
  deployMessage('B', 'b', at(11, 10)),
  deployMessage('A2', 'a', at(11, 20)),
  deployMessage('B2', 'b', at(11, 30)),
  deployMessage('F', 'c', at(11, 35), { status: 'failure' }),
  deployMessage('C', 'c', at(11, 50)),
  deployMessage('X', 'd', at(11, 52), { status: 'cancelled' }),
  deployMessage('S', 'd', at(11, 53), { environment: 'staging' }),
];
const ms = (iso: string) => Date.parse(iso) * 1e6;

describe("Datadog's own DORA view agrees with ours (issue 11)", () => {
  let dd: FakeDatadog;
  let store: SqliteStore;
  before(async () => {
    dd = await new FakeDatadog().start();
    store = new SqliteStore(':memory:');
    const logger = memoryLogger();
    const sink = dd.sink(logger);
    const exporter = new Exporter({ store, sink, settings, logger, now: () => NOW });
    const processMessage = createProcessor({ store, settings, logger, exporter, now: () => NOW });
    // Out of order and twice: the records must not depend on it.
    for (const m of [...history.slice(4), ...history.slice(0, 4), ...history]) await processMessage(m);
    await rollup({ store, sink, exporter, settings, logger, now: () => NOW });
  });
  after(async () => {
    await dd.stop();
    await store.close();
  });

  type Attributes = Record<string, unknown> & { id: string };
  const records = (path: string) =>
    (dd.bodies(path) as Array<{ data: { attributes: Attributes } }>).map((b) => b.data.attributes);
  /** Datadog keeps the last record sent per id (a failure is closed by sending it again). */
  const lastById = (path: string) => new Map(records(path).map((a) => [a.id, a]));

  test('one DORA deployment per production deployment: not the cancelled one, not staging', () => {
    assert.deepEqual(
      [...lastById('/api/v2/dora/deployment').keys()].sort(),
      ['A', 'A2', 'B', 'B2', 'C', 'F'].map((id) => `devstats:ci:billing:${id}`).sort(),
    );
  });

  test('one DORA failure per failed change, each closed by the deploy that restored service', () => {
    assert.deepEqual(Object.fromEntries(lastById('/api/v2/dora/failure')), {
      'rollback:ci:billing:B': {
        id: 'rollback:ci:billing:B',
        name: 'billing rolled back in production',
        services: ['billing'],
        env: 'production',
        started_at: ms(at(11, 10)),
        finished_at: ms(at(11, 20)),
        git: {
          commit_sha: '6200000000000000000000000000000000000000',
          repository_url: 'https://github.com/acme/billing',
        },
        team: 'payments',
        version: '6200000000000000000000000000000000000000',
      },
      'failure:ci:billing:F': {
        id: 'failure:ci:billing:F',
        name: 'billing deploy failed in production',
        services: ['billing'],
        env: 'production',
        started_at: ms(at(11, 35)),
        finished_at: ms(at(11, 50)),
        git: {
          commit_sha: '6300000000000000000000000000000000000000',
          repository_url: 'https://github.com/acme/billing',
        },
        team: 'payments',
        version: '6300000000000000000000000000000000000000',
      },
    });
  });

  test("Datadog's figures from those records equal ours: deployments, change failure rate, time to restore", async () => {
    const deployments = lastById('/api/v2/dora/deployment').size;
    const failures = [...lastById('/api/v2/dora/failure').values()];
    const theirs = {
      deployments,
      changeFailureRate: failures.length / deployments,
      timeToRestore: failures.map((f) => (Number(f.finished_at) - Number(f.started_at)) / 1e9).sort((a, b) => a - b),
    };
    const deploys = await store.deploysBetween(at(0, 0), at(23, 59));
    const all = teamScopes(settings).find((s) => s.name === 'all')!;
    const report = await buildReport(store, settings, {
      period: dayRange('2026-11-20', '2026-11-20'),
      comparison: dayRange('2026-11-19', '2026-11-19'),
    });
    const ours = {
      deployments: report.teams.find((t) => t.team === 'all')!.current.deployments,
      changeFailureRate: changeFailureRate(settings, all, '2026-11-20', deploys, 1)?.rate,
      timeToRestore: restoreTimes(settings, all, deploys, { from: at(0, 0), to: at(23, 59) }).sort((a, b) => a - b),
    };
    assert.deepEqual(ours, { deployments: 6, changeFailureRate: 1 / 3, timeToRestore: [600, 900] });
    assert.deepEqual(theirs, ours);
  });

  test('our own time to restore distribution and change failure rate gauge say the same', () => {
    const values = (
      dd.bodies('/api/v1/distribution_points') as Array<{
        series: Array<{ metric: string; points: Array<[number, number[]]> }>;
      }>
    )
      .flatMap((b) => b.series)
      .filter((s) => s.metric === 'devstats.time_to_restore')
      .flatMap((s) => s.points.flatMap(([, v]) => v))
      .sort((a, b) => a - b);
    assert.deepEqual(values, [600, 900]);
    const gauges = (
      dd.bodies('/api/v1/series') as Array<{
        series: Array<{ metric: string; tags: string[]; points: Array<[number, number]> }>;
      }>
    )
      .flatMap((b) => b.series)
      .filter((s) => s.metric === 'devstats.change_failure_rate' && s.tags.includes('team:all'));
    assert.equal(gauges.at(-1)?.points[0]?.[1], 1 / 3);
  });

  test("each DORA deployment carries version and git.commit_sha, so Datadog's rollback detection finds the rollback ours finds", () => {
    const deployments = [...lastById('/api/v2/dora/deployment').values()].sort(
      (a, b) => Number(a.finished_at) - Number(b.finished_at),
    );
    for (const d of deployments) {
      assert.equal(typeof d.version, 'string', d.id);
      assert.equal((d.git as { commit_sha?: string } | undefined)?.commit_sha, d.version, d.id);
    }
    // Datadog's rule (CD Visibility, "Rollback detection"): a version different from the previous
    // one, and deployed before, per service and env.
    const seen: string[] = [];
    const rollbacks: string[] = [];
    for (const d of deployments) {
      const version = String(d.version);
      if (seen.length > 0 && seen.at(-1) !== version && seen.includes(version)) rollbacks.push(d.id);
      seen.push(version);
    }
    // A2 went back to a; B2 redeploys b, which Datadog too calls a rollback (b was deployed before
    // and differs from a): the one place its rule and ours part (docs/metrics.md, "Datadog's DORA view").
    assert.deepEqual(rollbacks, ['devstats:ci:billing:A2', 'devstats:ci:billing:B2']);
  });

  test('failed deployment recovery time goes as its own distribution, {service, team}: the two change-caused restores', () => {
    const series = (
      dd.bodies('/api/v1/distribution_points') as Array<{
        series: Array<{ metric: string; tags: string[]; points: Array<[number, number[]]> }>;
      }>
    )
      .flatMap((b) => b.series)
      .filter((s) => s.metric === 'devstats.failed_deployment_recovery_time');
    assert.deepEqual(
      series.flatMap((s) => s.points.flatMap(([, v]) => v)).sort((a, b) => a - b),
      [600, 900],
    );
    for (const s of series) assert.deepEqual(s.tags, ['service:billing', 'team:payments']);
  });

  test('a DORA failure withdrawn is deleted through the API; one never sent is no error', async () => {
    const sink = dd.sink(memoryLogger());
    await sink.withdrawDoraFailure('failure:ci:billing:F');
    await sink.withdrawDoraFailure('failure:never-sent-at-all');
    assert.deepEqual(
      dd.accepted.filter((r) => r.method === 'DELETE').map((r) => decodeURIComponent(r.path)),
      ['/api/v2/dora/failure/failure:ci:billing:F', '/api/v2/dora/failure/failure:never-sent-at-all'],
    );
  });

  test('the cancelled deploy is never a devstats.deploys point', () => {
    const statuses = (dd.bodies('/api/v1/series') as Array<{ series: Array<{ metric: string; tags: string[] }> }>)
      .flatMap((b) => b.series)
      .filter((s) => s.metric === 'devstats.deploys')
      .map((s) => s.tags.find((t) => t.startsWith('status:')));
    assert.ok(statuses.length > 0);
    assert.ok(!statuses.includes('status:cancelled'), String(statuses));
  });
});
