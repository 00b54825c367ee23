import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { main as cli } from '../../shared/cli/main.ts';
import { parseHooks } from '../../shared/github/redeliver.ts';
import { FakeGithub } from '../support/github-server.ts';

/*
 * GitHub's "list deliveries for a repository webhook" answers, newest first, in the documented
 * shape (https://docs.github.com/en/rest/repos/webhooks#list-deliveries-for-a-repository-webhook).
 */
const delivery = (id: number, guid: string, at: string, statusCode: number) => ({
  id,
  guid,
  delivered_at: at,
  redelivery: false,
  duration: 0.27,
  status:
    statusCode === 0 ? 'Failed to connect to host' : statusCode < 300 ? 'OK' : `Invalid HTTP Response: ${statusCode}`,
  status_code: statusCode,
  event: 'push',
  action: null,
  installation_id: null,
  repository_id: 1296269,
  throttled_at: null,
});

describe('devstats redeliver github (issue 12)', () => {
  const github = new FakeGithub();
  const redelivered: number[] = [];
  before(async () => {
    await github.start();
    const deliveries = [
      delivery(9, 'g-made-good', '2026-11-22T11:50:00Z', 202), // a later redelivery made g-made-good good
      delivery(8, 'g-503', '2026-11-22T11:40:00Z', 503),
      delivery(7, 'g-made-good', '2026-11-22T11:30:00Z', 500),
      delivery(6, 'g-ok', '2026-11-22T11:20:00Z', 202),
      delivery(5, 'g-refused', '2026-11-22T11:10:00Z', 0),
      delivery(4, 'g-old', '2026-11-20T10:00:00Z', 500), // before --since
    ];
    github.on('GET', /^\/repos\/acme\/billing\/hooks\/123\/deliveries$/, ({ query, path }) =>
      github.paged(deliveries, query, path, 2),
    );
    github.on('POST', /^\/repos\/acme\/billing\/hooks\/123\/deliveries\/\d+\/attempts$/, ({ path }) => {
      redelivered.push(Number(path.split('/')[7]));
      return { status: 202, body: {} };
    });
  });
  after(() => github.stop());

  const env = () => ({
    GITHUB_TOKEN: 'ghp_test',
    GITHUB_API_URL: github.url,
    DEVSTATS_GITHUB_HOOKS: 'repo:acme/billing:123',
  });

  test('redelivers each failed delivery since --since that no later delivery made good, once', async () => {
    github.fail(/deliveries$/, 500); // a 5xx is retried
    const lines: string[] = [];
    assert.equal(await cli(['redeliver', 'github', '--since', '2026-11-22T00:00:00Z'], env(), (l) => lines.push(l)), 0);
    assert.deepEqual(redelivered.sort(), [5, 8]);
    assert.deepEqual(lines, [
      'acme/billing hook 123: 5 deliveries since 2026-11-22T00:00:00.000Z, 2 failed, 2 redelivered',
    ]);
    assert.ok(
      github.requests.some((r) => r.query.includes('page=2')),
      'followed the Link header',
    );
    assert.ok(github.requests.every((r) => r.authorization === 'token ghp_test'));
  });

  test('--dry-run redelivers nothing', async () => {
    redelivered.length = 0;
    const lines: string[] = [];
    await cli(['redeliver', 'github', '--since', '2026-11-22T00:00:00Z', '--dry-run'], env(), (l) => lines.push(l));
    assert.deepEqual(redelivered, []);
    assert.match(lines[0] ?? '', /2 failed, 2 would be redelivered/);
  });

  test('hooks are named repo:<owner>/<name>:<id> or org:<org>:<id>; anything else is refused', () => {
    assert.deepEqual(parseHooks('repo:acme/billing:123, org:acme:456'), [
      { kind: 'repo', owner: 'acme', repo: 'billing', hookId: 123 },
      { kind: 'org', org: 'acme', hookId: 456 },
    ]);
    assert.throws(() => parseHooks('acme/billing'), /DEVSTATS_GITHUB_HOOKS/);
  });
});
