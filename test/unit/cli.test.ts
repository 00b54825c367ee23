import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main } from '../../shared/cli/main.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { fill } from '../support/report-history.ts';

const dir = mkdtempSync(join(tmpdir(), 'devstats-cli-'));
const config = join(dir, 'devstats.yaml');
const env = { DEVSTATS_DATA_DIR: dir, DEVSTATS_CONFIG: config };

async function run(...args: string[]): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const code = await main(args, env, (line) => lines.push(line));
  return { code, lines };
}

describe('devstats report from the command line', () => {
  before(async () => {
    writeFileSync(
      config,
      'bots: [release-robot]\nteams:\n  payments: { services: [billing], repositories: [acme/billing] }\n  search: { services: [search], repositories: [acme/search] }\n',
    );
    const store = new SqliteStore(join(dir, 'devstats.sqlite'));
    await fill(store);
    await store.close();
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('--out report.html with YAML annotations writes a self-contained page', async () => {
    const annotations = join(dir, 'milestones.yaml');
    writeFileSync(annotations, '- { date: 2026-08-15, label: service mesh rollout }\n');
    const out = join(dir, 'q3.html');
    const { code, lines } = await run('report', '--quarter', '2026-Q3', '--out', out, '--annotations', annotations);
    assert.equal(code, 0);
    assert.match(lines[0] ?? '', /wrote .*q3\.html \(html, 3 teams, 2026-Q3 against 2026-Q2\)/);
    const html = readFileSync(out, 'utf8');
    assert.match(html, /service mesh rollout/);
    assert.match(html, /Team payments/);
  });

  test('--team and --format json: only that team, the figures as data', async () => {
    const { lines } = await run('report', '--quarter', '2026-Q3', '--team', 'payments', '--format', 'json');
    const report = JSON.parse(lines.join('\n')) as {
      teams: Array<{ team: string; current: { successfulDeploys: number } }>;
    };
    assert.deepEqual(
      report.teams.map((t) => [t.team, t.current.successfulDeploys]),
      [['payments', 4]],
    );
  });

  test('--from/--to with --compare <quarter>, as Markdown', async () => {
    const { lines } = await run('report', '--from', '2026-09-01', '--to', '2026-09-30', '--compare', '2026-Q2');
    assert.match(lines.join('\n'), /^# Delivery report: 2026-09-01 – 2026-09-30\n\nCompared with 2026-Q2\./);
  });

  test('bad arguments are refused with a message naming them', async () => {
    await assert.rejects(run('report', '--quarter', '2026-Q5'), /not a quarter: 2026-Q5/);
    await assert.rejects(run('report'), /needs --quarter, or --from and --to/);
    await assert.rejects(
      run('report', '--quarter', '2026-Q3', '--format', 'pdf'),
      /--format must be html, md, json or csv/,
    );
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '[{"date": "15 August", "label": "x"}]');
    await assert.rejects(run('report', '--quarter', '2026-Q3', '--annotations', bad), /bad\.json: 0\.date/);
  });

  test('rollup prints the figures per team', async () => {
    const { code, lines } = await run('rollup');
    assert.equal(code, 0);
    assert.ok(
      lines.some((l) => l.startsWith('payments ')),
      lines.join('\n'),
    );
  });
});

describe('devstats events --failed', () => {
  test('lists the exports Datadog refused for good, with the reason', async () => {
    const failedDir = mkdtempSync(join(tmpdir(), 'devstats-failed-'));
    const store = new SqliteStore(join(failedDir, 'devstats.sqlite'));
    await store.putDeploy(
      {
        kind: 'deploy',
        id: 'ci:billing:7',
        source: 'ci',
        service: 'billing',
        environment: 'production',
        status: 'success',
        startedAt: '2026-11-20T10:00:00.000Z',
        finishedAt: '2026-11-20T10:01:00.000Z',
        actor: null,
        externalId: '7',
      },
      { shipsChanges: false },
    );
    await store.parkExports(
      [{ kind: 'deploy', id: 'ci:billing:7' }],
      'Datadog DORA deployment failed with 400: bad env',
      '2026-11-20T10:02:00.000Z',
    );
    await store.close();
    const lines: string[] = [];
    assert.equal(await main(['events', '--failed'], { DEVSTATS_DATA_DIR: failedDir }, (l) => lines.push(l)), 0);
    assert.deepEqual(lines, [
      'deploy   ci:billing:7  2026-11-20T10:02:00.000Z  Datadog DORA deployment failed with 400: bad env',
      '1 parked export (devstats replay tries them again)',
    ]);
    rmSync(failedDir, { recursive: true, force: true });
  });
});
