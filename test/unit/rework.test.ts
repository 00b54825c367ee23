import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BatchingSink } from '../../shared/export/batching-sink.ts';
import { Exporter } from '../../shared/export/exporter.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { memoryLogger } from '../../shared/log.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { rollup } from '../../shared/pipeline/rollup.ts';
import { buildReport, dayRange, previousPeriod, type Report } from '../../shared/report/figures.ts';
import { renderCsv, renderHtml } from '../../shared/report/render.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { ciDeployment, githubExamples, githubIssue, githubMergedPullRequest, githubPush } from '../support/fixtures.ts';
import { RecordingSink } from '../support/recording-sink.ts';

/*
 * Deployment rework (issue 27), one day of billing (team payments) worked out by hand, every fact
 * arriving as the webhook that carries it (GitHub's public examples, changed where said):
 *   D1 10:00 ships c1 "Add the ledger"                       planned
 *   D2 11:00 ships c2 `Revert "Add the ledger"`               rework: revert
 *   D3 12:00 ships c3, merge commit of #7 labelled "Hotfix"  rework: hotfix label (case aside)
 *   D4 13:00 ships c4, merge commit of #8 from hotfix/login  rework: hotfix branch
 *   an incident of billing (GitHub issue, labels incident + service:billing) open 13:30 – 15:00
 *   D5 14:00 ships c5                                         rework: open incident
 *   D6 15:30 deploys c1 again (first deployed before c5)     rework: rollback
 *   D7 16:30 ships c6                                         planned (the incident is over)
 *   an issue labelled incident at 17:00, the label taken off 17:10: withdrawn
 *   D8 17:20 ships c7                                         planned (no incident was open)
 * 5 unplanned of 8 production deployments: 62.5 %.
 */
const settings = parseSettings({ teams: { payments: { services: ['billing'], repositories: ['acme/billing'] } } });
const at = (hhmm: string) => `2026-11-20T${hhmm}:00.000Z`;
const sha = (n: number) => n.toString(16).padStart(40, 'c');

let previous = '0'.repeat(40);
function push(n: number, message: string, time: string): Record<string, unknown> {
  const body = githubPush();
  const template = (body.commits as Array<Record<string, unknown>>)[0] ?? {};
  const after = sha(n);
  Object.assign(body, {
    ref: 'refs/heads/main',
    before: previous,
    after,
    forced: false,
    commits: [{ ...template, id: after, message, timestamp: at(time) }],
  });
  (body.repository as Record<string, unknown>).full_name = 'acme/billing';
  (body.repository as Record<string, unknown>).pushed_at = Date.parse(at(time)) / 1000;
  previous = after;
  return body;
}

function pullRequest(number: number, mergeCommit: string, labels: string[], headRef: string): Record<string, unknown> {
  const body = githubMergedPullRequest();
  body.number = number;
  (body.repository as Record<string, unknown>).full_name = 'acme/billing';
  const pr = body.pull_request as Record<string, unknown>;
  Object.assign(pr, {
    number,
    merge_commit_sha: mergeCommit,
    merged_at: at('09:30'),
    created_at: at('09:00'),
    title: `Fix #${String(number)}`,
    labels: labels.map((name, i) => ({ id: i, name })),
  });
  (pr.head as Record<string, unknown>).ref = headRef;
  return body;
}

const deploy = (n: number, commit: string, time: string) =>
  ciDeployment({
    id: `deploy-${String(n)}`,
    commitSha: commit,
    startedAt: new Date(Date.parse(at(time)) - 120_000).toISOString(),
    finishedAt: at(time),
  });

function issue(
  number: number,
  action: 'opened' | 'closed' | 'unlabeled',
  labels: string[],
  opened: string,
  updated: string,
) {
  const body = githubIssue(action === 'unlabeled' ? 'labeled' : action, labels, {
    createdAt: at(opened),
    updatedAt: at(updated),
    closedAt: at(updated),
  });
  (body.repository as Record<string, unknown>).full_name = 'acme/billing';
  (body.issue as Record<string, unknown>).number = number;
  if (action === 'unlabeled') {
    body.action = 'unlabeled';
    body.label = { id: 9, name: 'incident' };
  }
  return body;
}

const deliveries: Array<[string, string, Record<string, unknown>]> = [
  ['github', 'push', push(1, 'Add the ledger', '09:50')],
  ['ci', 'deployment', deploy(1, sha(1), '10:00')],
  ['github', 'push', push(2, `Revert "Add the ledger"\n\nThis reverts commit ${sha(1)}.`, '10:50')],
  ['ci', 'deployment', deploy(2, sha(2), '11:00')],
  ['github', 'pull_request', pullRequest(7, sha(3), ['Hotfix'], 'fix-rounding')],
  ['github', 'push', push(3, 'Merge pull request #7', '11:50')],
  ['ci', 'deployment', deploy(3, sha(3), '12:00')],
  ['github', 'pull_request', pullRequest(8, sha(4), ['bug'], 'hotfix/login')],
  ['github', 'push', push(4, 'Merge pull request #8', '12:50')],
  ['ci', 'deployment', deploy(4, sha(4), '13:00')],
  ['github', 'issues', issue(41, 'opened', ['incident', 'service:billing'], '13:30', '13:30')],
  ['github', 'push', push(5, 'Tune the pool', '13:50')],
  ['ci', 'deployment', deploy(5, sha(5), '14:00')],
  ['github', 'issues', issue(41, 'closed', ['incident', 'service:billing'], '13:30', '15:00')],
  ['ci', 'deployment', deploy(6, sha(1), '15:30')],
  ['github', 'push', push(6, 'Tune the pool again', '16:20')],
  ['ci', 'deployment', deploy(7, sha(6), '16:30')],
  ['github', 'issues', issue(42, 'opened', ['incident', 'service:billing'], '17:00', '17:00')],
  ['github', 'issues', issue(42, 'unlabeled', ['service:billing'], '17:00', '17:10')],
  ['github', 'push', push(7, 'Log less', '17:15')],
  ['ci', 'deployment', deploy(8, sha(7), '17:20')],
];

describe('deployment rework rate: every rule, from the webhooks that carry it', () => {
  const store = new SqliteStore(':memory:');
  let report: Report;
  before(async () => {
    assert.ok(githubExamples('issues').length > 0);
    const processMessage = createProcessor({ store, settings, logger: memoryLogger() });
    for (const [i, [source, eventType, body]] of deliveries.entries()) {
      const outcome = await processMessage({
        data: Buffer.from(JSON.stringify(body)),
        attributes: { source, eventType, deliveryId: `d${String(i)}`, receivedAt: '2026-11-20T18:00:00.000Z' },
      });
      assert.equal(outcome.outcome, 'stored', `${source} ${eventType} #${String(i)}: ${JSON.stringify(outcome)}`);
    }
    const period = dayRange('2026-10-24', '2026-11-20');
    report = await buildReport(store, settings, {
      period,
      comparison: previousPeriod(period),
      now: new Date('2026-11-21T08:00:00Z'),
    });
  });
  after(() => store.close());

  test('the report: 5 of 8, and the rule of each in the drill-down', () => {
    const payments = report.teams.find((t) => t.team === 'payments')!.current;
    assert.equal(payments.deployments, 8);
    assert.equal(payments.deploymentReworkRate, 5 / 8);
    assert.deepEqual(
      payments.rework.map((r) => [r.deploy, r.rule]),
      [
        ['ci:billing:deploy-2', 'revert'],
        ['ci:billing:deploy-3', 'hotfix_label'],
        ['ci:billing:deploy-4', 'hotfix_branch'],
        ['ci:billing:deploy-5', 'open_incident'],
        ['ci:billing:deploy-6', 'rollback'],
      ],
    );
    assert.equal(payments.rework[1]?.detail, 'acme/billing#7 Hotfix');
    assert.equal(payments.rework[3]?.detail, 'github:acme/billing#41');
    // The withdrawn incident counts nowhere: one production incident, not two.
    assert.equal(payments.incidents.total, 1);
    const html = renderHtml(report);
    assert.match(html, /Deployment rework rate/);
    assert.match(html, /62\.5 %/);
    assert.match(html, /hotfix branch/);
    assert.match(
      renderCsv(report),
      /payments,2026-10-24 – 2026-11-20,2026-10-24,2026-11-20,Deployment rework rate,0\.625,fraction,62\.5 %/,
    );
  });

  test('the 28d gauge of the same day is the report’s figure', async () => {
    const recording = new RecordingSink();
    const sink = new BatchingSink(recording);
    const now = () => new Date('2026-11-20T23:00:00.000Z');
    await rollup({
      store,
      sink,
      settings,
      logger: memoryLogger(),
      exporter: new Exporter({ store, sink, settings, logger: memoryLogger(), now }),
      now,
    });
    const gauge = recording.series_.find(
      (p) => p.metric === 'devstats.rework_rate' && p.tags.includes('team:payments') && p.tags.includes('window:28d'),
    );
    assert.equal(gauge?.value, 5 / 8);
  });
});
