import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BusMessage } from '../../shared/bus/bus.ts';
import { main as cli } from '../../shared/cli/main.ts';
import { memoryLogger } from '../../shared/log.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { buildReport, previousPeriod, quarter } from '../../shared/report/figures.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { spinnakerPipelineEvent } from '../support/fixtures.ts';
import { FakeGithub } from '../support/github-server.ts';

/*
 * A quarter of one repository, told twice: as GitHub's API holds it (commits with parents, merged
 * pull requests, deployments with statuses, in the documented shapes) for `devstats backfill`, and
 * as the webhooks that announced it (pushes, pull_request, deployment_status) for `process`.
 */
const REPO = 'acme/billing';
const sha = (n: number) => 'b' + n.toString(16).padStart(39, '0');
const DAY = 86_400_000;
const start = Date.parse('2026-07-01T09:00:00Z');
const AUTHORS = ['alice', 'bob', 'carol'];
const COMMITS = 60;
const commitAt = (n: number) => new Date(start + n * 1.5 * DAY).toISOString();
interface DeploymentFact {
  id: number;
  n: number;
  state: 'success' | 'failure';
  createdAt: string;
  finishedAt: string;
}
const deployments: DeploymentFact[] = [];
for (let n = 3, id = 1000; n <= COMMITS; n += 3, id++) {
  const createdAt = new Date(Date.parse(commitAt(n)) + 3 * 3600_000).toISOString();
  deployments.push({
    id,
    n,
    state: id % 7 === 0 ? 'failure' : 'success',
    createdAt,
    finishedAt: new Date(Date.parse(createdAt) + 600_000).toISOString(),
  });
}
const merged = [12, 30, 45].map((n, i) => ({ number: 100 + i, n }));

/** GitHub's REST shapes (only the fields anyone reads, plus a few). */
const apiCommit = (n: number) => ({
  sha: sha(n),
  commit: {
    author: { name: AUTHORS[n % 3], email: `${AUTHORS[n % 3]}@acme.example`, date: commitAt(n) },
    committer: { name: 'GitHub', email: 'noreply@github.com', date: commitAt(n) },
    message: `change ${n}`,
  },
  author: { login: AUTHORS[n % 3], id: n },
  parents: n === 1 ? [] : [{ sha: sha(n - 1), url: '' }],
});
const apiPull = (pr: { number: number; n: number }) => ({
  number: pr.number,
  state: 'closed',
  user: { login: AUTHORS[(pr.n + 1) % 3] },
  created_at: new Date(Date.parse(commitAt(pr.n)) - DAY).toISOString(),
  updated_at: commitAt(pr.n),
  merged_at: commitAt(pr.n),
  merge_commit_sha: sha(pr.n),
  base: { ref: 'main' },
  head: { sha: sha(pr.n) + 'h' },
});
const graphqlDeployment = (d: DeploymentFact) => ({
  databaseId: d.id,
  commitOid: sha(d.n),
  environment: 'production',
  createdAt: d.createdAt,
  payload: '{}',
  creator: { login: 'deploy-robot' },
  statuses: {
    nodes: [
      {
        state: 'INACTIVE',
        createdAt: new Date(Date.parse(d.finishedAt) + DAY).toISOString(),
        logUrl: null,
        environmentUrl: null,
      },
      { state: d.state.toUpperCase(), createdAt: d.finishedAt, logUrl: 'https://ci.example/log', environmentUrl: null },
      { state: 'IN_PROGRESS', createdAt: d.createdAt, logUrl: null, environmentUrl: null },
    ],
  },
});

/** The same history as webhooks, in the order GitHub would have sent them. */
function webhooks(): BusMessage[] {
  const messages: Array<{ at: string; message: BusMessage }> = [];
  const github = (eventType: string, body: unknown, at: string, id: string) =>
    messages.push({
      at,
      message: {
        data: Buffer.from(JSON.stringify(body)),
        attributes: { source: 'github', eventType, deliveryId: id, receivedAt: '2026-12-01T00:00:00.000Z' },
      },
    });
  for (let n = 1; n <= COMMITS; n++) {
    const c = apiCommit(n);
    github(
      'push',
      {
        ref: 'refs/heads/main',
        before: n === 1 ? '0'.repeat(40) : sha(n - 1),
        after: sha(n),
        forced: false,
        repository: { full_name: REPO, name: 'billing', pushed_at: Math.floor(Date.parse(commitAt(n)) / 1000) },
        commits: [
          {
            id: sha(n),
            timestamp: commitAt(n),
            author: { name: c.commit.author.name, email: c.commit.author.email, username: c.author.login },
          },
        ],
      },
      commitAt(n),
      `push-${n}`,
    );
  }
  for (const pr of merged) {
    const p = apiPull(pr);
    github(
      'pull_request',
      { action: 'closed', number: p.number, repository: { full_name: REPO }, pull_request: { ...p, merged: true } },
      p.merged_at,
      `pr-${p.number}`,
    );
  }
  for (const d of deployments) {
    github(
      'deployment_status',
      {
        deployment_status: {
          state: d.state,
          environment: 'production',
          created_at: d.finishedAt,
          log_url: 'https://ci.example/log',
        },
        deployment: {
          id: d.id,
          sha: sha(d.n),
          created_at: d.createdAt,
          creator: { login: 'deploy-robot' },
          payload: '{}',
        },
        repository: { full_name: REPO, name: 'billing' },
      },
      d.finishedAt,
      `status-${d.id}`,
    );
  }
  return messages.sort((a, b) => (a.at < b.at ? -1 : 1)).map((m) => m.message);
}

function fakeGithub(options: { failOnce?: boolean } = {}): FakeGithub {
  const github = new FakeGithub();
  github.on('GET', /^\/repos\/acme\/billing$/, () => ({ body: { full_name: REPO, default_branch: 'main' } }));
  github.on('GET', /^\/repos\/acme\/billing\/commits$/, ({ query, path }) => {
    const since = query.get('since') ?? '';
    const until = query.get('until') ?? '\uffff';
    const list = Array.from({ length: COMMITS }, (_, i) => apiCommit(COMMITS - i)).filter(
      (c) => c.commit.author.date >= since && c.commit.author.date <= until,
    );
    return github.paged(list, query, path, 25);
  });
  github.on('GET', /^\/repos\/acme\/billing\/pulls$/, ({ query, path }) =>
    github.paged([...merged].reverse().map(apiPull), query, path),
  );
  github.on('POST', /^\/graphql$/, ({ body }) => {
    const after = (body as { variables: { after: string | null } }).variables.after;
    const offset = after === null ? 0 : Number(after);
    const newest = [...deployments].reverse();
    const nodes = newest.slice(offset, offset + 8).map(graphqlDeployment);
    return {
      body: {
        data: {
          repository: {
            deployments: {
              pageInfo: { hasNextPage: offset + 8 < newest.length, endCursor: String(offset + 8) },
              nodes,
            },
          },
        },
      },
    };
  });
  if (options.failOnce === true) github.fail(/\/commits$/, 502);
  return github;
}

const settings = parseSettings({
  teams: { payments: { services: ['billing'], repositories: [REPO] } },
  bots: ['deploy-robot'],
});

async function storeContents(path: string) {
  const store = new SqliteStore(path);
  const events = (await store.events({})).map((e) => e.id).sort();
  const shipped = (await store.shippedBetween('2000-01-01T00:00:00.000Z', '2100-01-01T00:00:00.000Z'))
    .map((s) => `${s.id} ${s.deployId} ${s.leadTimeSeconds}`)
    .sort();
  const report = await buildReport(store, settings, {
    period: quarter('2026-Q3'),
    comparison: previousPeriod(quarter('2026-Q3')),
    now: new Date('2026-10-01T00:00:00Z'),
  });
  await store.close();
  return { events, shipped, report };
}

describe('devstats backfill github (issue 13)', () => {
  let dir: string;
  let github: FakeGithub;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'devstats-backfill-'));
    writeFileSync(
      join(dir, 'devstats.json'),
      JSON.stringify({ teams: { payments: { services: ['billing'], repositories: [REPO] } }, bots: ['deploy-robot'] }),
    );
    github = await fakeGithub({ failOnce: true }).start();
  });
  after(async () => {
    await github.stop();
    if (process.env.KEEP) console.error('KEPT', dir);
    else rmSync(dir, { recursive: true, force: true });
  });
  const env = (data: string) => ({
    DEVSTATS_DATA_DIR: data,
    DEVSTATS_CONFIG: join(dir, 'devstats.json'),
    GITHUB_TOKEN: 'ghp_backfill',
    GITHUB_API_URL: github.url,
  });
  const window = ['--since', '2026-07-01T00:00:00Z', '--until', '2026-10-01T00:00:00Z'];

  test('--dry-run counts what it would store, and stores nothing', async () => {
    const data = join(dir, 'dry');
    const lines: string[] = [];
    assert.equal(await cli(['backfill', 'github', ...window, '--dry-run'], env(data), (l) => lines.push(l)), 0);
    assert.match(
      lines.at(-1) ?? '',
      new RegExp(`would store ${COMMITS} commits, ${merged.length} pull_requests, ${deployments.length} deploys`),
    );
    assert.deepEqual((await storeContents(join(data, 'devstats.sqlite'))).events, []);
  });

  test('a backfill stores the quarter (a 502 retried on the way), one JSON line per step off a terminal, then a rollup', async () => {
    const data = join(dir, 'once');
    const lines: string[] = [];
    assert.equal(await cli(['backfill', 'github', ...window], env(data), (l) => lines.push(l)), 0);
    const steps = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { step: string; source: string });
    assert.ok(steps.some((s) => s.step === 'page') && steps.at(-1)?.step === 'done');
    assert.match(
      lines.join('\n'),
      new RegExp(`stored ${COMMITS} commits, ${merged.length} pull_requests, ${deployments.length} deploys`),
    );
    assert.match(lines.at(-1) ?? '', /rollup: 2 teams' figures published/);
    const { events, shipped } = await storeContents(join(data, 'devstats.sqlite'));
    assert.equal(events.length, COMMITS + merged.length + deployments.length);
    assert.ok(shipped.length > 0);
    // Run again: nothing new, every scope done.
    lines.length = 0;
    await cli(['backfill', 'github', ...window], env(data), (l) => lines.push(l));
    assert.match(lines.join('\n'), /stored nothing new/);
  });

  test('the same history sent as live webhooks afterwards changes nothing', async () => {
    const path = join(dir, 'once', 'devstats.sqlite');
    const before = await storeContents(path);
    const store = new SqliteStore(path);
    const processMessage = createProcessor({ store, settings, logger: memoryLogger() });
    for (const message of webhooks()) {
      const outcome = await processMessage(message);
      assert.equal(outcome.outcome, 'stored');
      // A push adds a push record (the backfill had no pushes); no deploy, commit or PR is new.
      for (const r of outcome.outcome === 'stored' ? outcome.results : [])
        if (r.kind !== 'push') assert.notEqual(r.result, 'created', `${r.id} created again`);
    }
    await store.close();
    const afterwards = await storeContents(path);
    assert.deepEqual(afterwards.shipped, before.shipped, 'no lead time changes');
  });

  test('an interrupted backfill, resumed, stores the same as one run', async () => {
    const data = join(dir, 'interrupted');
    const broken = new FakeGithub();
    // The first run dies at the second page of commits (GitHub keeps failing past the retries).
    let healed = false;
    const real = fakeGithub();
    await real.start();
    broken.on('GET', /./, () => undefined);
    await broken.start();
    const proxy = createServer((req: IncomingMessage, res: ServerResponse) => {
      void (async () => {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        if (req.url?.includes('/commits') === true && req.url.includes('page=2') && !healed) {
          res.writeHead(500).end('{"message":"boom"}');
          return;
        }
        const answer = await fetch(real.url + (req.url ?? '/'), {
          method: req.method ?? 'GET',
          headers: { 'content-type': 'application/json' },
          ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
        });
        const text = (await answer.text()).replaceAll(
          real.url,
          `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
        );
        res.writeHead(answer.status, {
          'content-type': 'application/json',
          ...(answer.headers.get('link')
            ? {
                link: answer.headers
                  .get('link')!
                  .replaceAll(real.url, `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`),
              }
            : {}),
        });
        res.end(text);
      })();
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const viaProxy = { ...env(data), GITHUB_API_URL: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` };
    await assert.rejects(cli(['backfill', 'github', ...window], viaProxy, () => undefined));
    const partial = await storeContents(join(data, 'devstats.sqlite'));
    assert.ok(partial.events.length > 0 && partial.events.length < COMMITS, 'stopped part-way');
    healed = true;
    assert.equal(await cli(['backfill', 'github', ...window], viaProxy, () => undefined), 0);
    proxy.closeAllConnections();
    proxy.close();
    await Promise.all([real.stop(), broken.stop()]);
    const resumed = await storeContents(join(data, 'devstats.sqlite'));
    const once = await storeContents(join(dir, 'once', 'devstats.sqlite'));
    assert.deepEqual(
      resumed.events,
      once.events.filter((id) => !id.includes(':main:')),
      'the same facts',
    );
    assert.deepEqual(resumed.shipped, once.shipped);
  });

  test('killed with SIGKILL after its first page, the same command (no --until) run again resumes: fewer requests, nothing twice, nothing missing (issue 25)', async (t) => {
    // The command a person types, in a process of its own: `--until` left to its default, "now".
    const command = ['backfill', 'github', '--since', '2026-07-01T00:00:00Z', '--repository', REPO];
    const real = await fakeGithub().start();
    let requests = 0;
    let killAtSecondPage: ChildProcess | undefined;
    const proxy = createServer((req: IncomingMessage, res: ServerResponse) => {
      requests++;
      if (killAtSecondPage !== undefined && req.url?.includes('/commits') === true && req.url.includes('page=2')) {
        // The first page is stored and its place recorded: the process dies before the second.
        killAtSecondPage.kill('SIGKILL');
        killAtSecondPage = undefined;
        res.destroy();
        return;
      }
      void (async () => {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const answer = await fetch(real.url + (req.url ?? '/'), {
          method: req.method ?? 'GET',
          headers: { 'content-type': 'application/json' },
          ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
        });
        const here = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
        const link = answer.headers.get('link');
        res.writeHead(answer.status, {
          'content-type': 'application/json',
          ...(link === null ? {} : { link: link.replaceAll(real.url, here) }),
        });
        res.end((await answer.text()).replaceAll(real.url, here));
      })();
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const viaProxy = (data: string) => ({
      ...env(data),
      GITHUB_API_URL: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    });
    const run = (data: string, kill = false) => {
      const child = spawn(process.execPath, ['--import', './scripts/preflight.js', 'shared/cli/main.ts', ...command], {
        env: { ...process.env, ...viaProxy(data) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (c: Buffer) => (output += c.toString()));
      if (kill) killAtSecondPage = child;
      return new Promise<{ signal: string | null; output: string }>((resolve) =>
        child.once('exit', (_code, signal) => {
          resolve({ signal, output });
        }),
      );
    };
    try {
      requests = 0;
      assert.equal((await run(join(dir, 'full'))).signal, null);
      const full = requests;

      const data = join(dir, 'killed');
      assert.equal((await run(data, true)).signal, 'SIGKILL');
      const partial = await storeContents(join(data, 'devstats.sqlite'));
      assert.ok(partial.events.length > 0 && partial.events.length < COMMITS, 'stopped part-way');
      requests = 0;
      const resumed = await run(data);
      assert.equal(resumed.signal, null);
      assert.ok(requests < full, `the re-run made ${requests} requests, a full run ${full}`);
      t.diagnostic(`requests: a full run ${full}, the re-run after the kill ${requests}`);
      const done = JSON.parse(resumed.output.split('\n').find((l) => l.includes('"step":"done"')) ?? '{}') as {
        duplicates?: number;
      };
      assert.equal(done.duplicates, 0, 'nothing the killed run stored is fetched and stored again');
      const [after, once] = await Promise.all([
        storeContents(join(data, 'devstats.sqlite')),
        storeContents(join(dir, 'full', 'devstats.sqlite')),
      ]);
      assert.deepEqual(after.events, once.events, 'the same facts as one run');
      assert.deepEqual(after.shipped, once.shipped);
    } finally {
      proxy.closeAllConnections();
      proxy.close();
      await real.stop();
    }
  });

  test('the report over the backfilled quarter equals the report built from the same history sent as webhooks', async () => {
    const backfilled = join(dir, 'report-backfill');
    assert.equal(await cli(['backfill', 'github', ...window], env(backfilled), () => undefined), 0);
    const live = new SqliteStore(join(dir, 'report-live.sqlite'));
    const processMessage = createProcessor({ store: live, settings, logger: memoryLogger() });
    for (const message of webhooks()) await processMessage(message);
    await live.close();
    const fromBackfill = (await storeContents(join(backfilled, 'devstats.sqlite'))).report;
    const fromWebhooks = (await storeContents(join(dir, 'report-live.sqlite'))).report;
    assert.deepEqual(fromBackfill.teams, fromWebhooks.teams);
    assert.deepEqual(fromBackfill.movers, fromWebhooks.movers);
    const payments = fromBackfill.teams.find((t) => t.team === 'payments')!;
    assert.equal(payments.current.deployments, deployments.length);
    assert.ok((payments.current.leadTimeP50 ?? 0) > 0);
  });

  test('a 403: the source stops, naming the token and the permission it needs', async () => {
    const denied = await new FakeGithub().start();
    denied.on('GET', /./, () => ({
      status: 403,
      body: { message: 'Resource not accessible by personal access token' },
    }));
    const lines: string[] = [];
    const code = await cli(
      ['backfill', 'github', ...window],
      { ...env(join(dir, 'denied')), GITHUB_API_URL: denied.url },
      (l) => lines.push(l),
    );
    await denied.stop();
    assert.equal(code, 1);
    assert.match(
      lines.join('\n'),
      /GitHub answered 403: GITHUB_TOKEN needs read access to Contents, Pull requests, Deployments and Metadata/,
    );
  });
});

/** A tiny server of JSON routes, as the other vendors' APIs answer. */
async function jsonServer(
  route: (
    path: string,
    query: URLSearchParams,
    hits: number,
  ) => { status?: number; body: unknown; headers?: Record<string, string> },
) {
  let hits = 0;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const answer = route(url.pathname, url.searchParams, ++hits);
    res
      .writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers })
      .end(JSON.stringify(answer.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () =>
      new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      ),
  };
}

describe('devstats backfill of the other sources (issue 13)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'devstats-backfill-others-'));
    writeFileSync(
      join(dir, 'devstats.json'),
      JSON.stringify({
        teams: { payments: { services: ['checkout'] } },
        circleci: { projects: ['gh/acme/payments-api'], deploys: [] },
        cloudbuild: { deploys: [{ trigger: 'infra-apply-prod', service: 'network', environment: 'production' }] },
      }),
    );
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const window = ['--since', '2025-11-01T00:00:00Z', '--until', '2026-12-01T00:00:00Z'];
  const deploysIn = async (data: string) => {
    const store = new SqliteStore(join(data, 'devstats.sqlite'));
    const deploys = (await store.events({ kind: 'deploy' })).map((d) =>
      d.kind === 'deploy' ? `${d.id} ${d.environment} ${d.status}` : '',
    );
    await store.close();
    return deploys;
  };

  test('Spinnaker Gate: pipeline executions, by the webhook rules', async () => {
    const execution = (spinnakerPipelineEvent().content as { execution: Record<string, unknown> }).execution;
    const cancelled = {
      ...execution,
      id: 'exec-2',
      status: 'CANCELED',
      canceled: true,
      endTime: 1763812900000,
      stages: (execution.stages as Array<Record<string, unknown>>).map((stage) => ({ ...stage, status: 'CANCELED' })),
    };
    const gate = await jsonServer((path) =>
      path === '/applications/checkout/pipelines'
        ? { body: [execution, cancelled, { ...execution, id: 'running', status: 'RUNNING' }] }
        : { status: 404, body: {} },
    );
    const data = join(dir, 'spinnaker');
    assert.equal(
      await cli(
        ['backfill', 'spinnaker', ...window],
        {
          DEVSTATS_DATA_DIR: data,
          DEVSTATS_CONFIG: join(dir, 'devstats.json'),
          SPINNAKER_GATE_URL: gate.url,
          SPINNAKER_GATE_TOKEN: 't',
        },
        () => undefined,
      ),
      0,
    );
    await gate.stop();
    assert.deepEqual(await deploysIn(data), [
      'spinnaker:01JD7Y3K3M5B9X2Q8W4T6R1N0P production success',
      'spinnaker:exec-2 production cancelled',
    ]);
  });

  test('HCP Terraform: workspaces and their runs (JSON:API pages), a 429 with Retry-After waited for', async () => {
    const run = (id: string, status: string, at: string) => ({
      id,
      type: 'runs',
      attributes: {
        status,
        'created-at': at,
        'status-timestamps': { [`${status.replace('_', '-')}-at`]: new Date(Date.parse(at) + 240_000).toISOString() },
      },
    });
    const tfc = await jsonServer((path, query, hits) => {
      if (hits === 2) return { status: 429, body: { errors: [{ status: '429' }] }, headers: { 'retry-after': '1' } };
      if (path === '/api/v2/organizations/acme/workspaces')
        return {
          body: {
            data: [{ id: 'ws-1', type: 'workspaces', attributes: { name: 'checkout-production' } }],
            meta: { pagination: { 'next-page': null } },
          },
        };
      if (path === '/api/v2/workspaces/ws-1/runs') {
        const page = Number(query.get('page[number]'));
        return page === 1
          ? {
              body: {
                data: [
                  run('run-3', 'applied', '2026-11-20T10:00:00.000Z'),
                  run('run-2', 'planned_and_finished', '2026-11-19T10:00:00.000Z'),
                ],
                meta: { pagination: { 'next-page': 2 } },
              },
            }
          : {
              body: {
                data: [run('run-1', 'errored', '2026-11-18T10:00:00.000Z')],
                meta: { pagination: { 'next-page': null } },
              },
            };
      }
      return { status: 404, body: {} };
    });
    const data = join(dir, 'terraform');
    const started = Date.now();
    assert.equal(
      await cli(
        ['backfill', 'terraform', ...window],
        {
          DEVSTATS_DATA_DIR: data,
          DEVSTATS_CONFIG: join(dir, 'devstats.json'),
          TFC_TOKEN: 't',
          TFC_ORGANIZATION: 'acme',
          TFC_URL: tfc.url,
        },
        () => undefined,
      ),
      0,
    );
    assert.ok(Date.now() - started >= 1000, 'waited as Retry-After asked');
    await tfc.stop();
    assert.deepEqual(await deploysIn(data), [
      'terraform:run-1 production failure',
      'terraform:run-3 production success',
    ]);
  });

  test('CircleCI: pipelines (page tokens) and their workflows, by the circleci rules', async () => {
    const circle = await jsonServer((path, query) => {
      if (path === '/project/gh/acme/payments-api/pipeline')
        return query.get('page-token') === null
          ? {
              body: {
                items: [
                  {
                    id: 'p2',
                    created_at: '2026-11-22T09:48:00Z',
                    vcs: { revision: 'a'.repeat(40), target_repository_url: 'https://github.com/acme/payments-api' },
                  },
                ],
                next_page_token: 'n1',
              },
            }
          : {
              body: {
                items: [{ id: 'p1', created_at: '2026-11-21T09:48:00Z', vcs: { revision: 'b'.repeat(40) } }],
                next_page_token: null,
              },
            };
      if (path === '/pipeline/p2/workflow')
        return {
          body: {
            items: [
              {
                id: 'w2',
                name: 'deploy-production',
                status: 'success',
                created_at: '2026-11-22T09:48:02Z',
                stopped_at: '2026-11-22T09:49:34Z',
              },
              {
                id: 'w3',
                name: 'build-test',
                status: 'success',
                created_at: '2026-11-22T09:48:02Z',
                stopped_at: '2026-11-22T09:49:00Z',
              },
            ],
          },
        };
      if (path === '/pipeline/p1/workflow')
        return {
          body: {
            items: [
              {
                id: 'w1',
                name: 'deploy-staging',
                status: 'failed',
                created_at: '2026-11-21T09:48:02Z',
                stopped_at: '2026-11-21T09:50:00Z',
              },
            ],
          },
        };
      return { status: 404, body: {} };
    });
    const data = join(dir, 'circleci');
    assert.equal(
      await cli(
        ['backfill', 'circleci', ...window],
        {
          DEVSTATS_DATA_DIR: data,
          DEVSTATS_CONFIG: join(dir, 'devstats.json'),
          CIRCLECI_TOKEN: 't',
          CIRCLECI_URL: circle.url,
        },
        () => undefined,
      ),
      0,
    );
    await circle.stop();
    assert.deepEqual(await deploysIn(data), ['circleci:w1 staging failure', 'circleci:w2 production success']);
  });

  test("Cloud Build: the project's builds through @google-cloud/cloudbuild, by the cloudbuild rules", async () => {
    const build = (id: string, status: string, trigger: string, finish: string) => ({
      id,
      status,
      createTime: '2026-11-22T10:00:00Z',
      startTime: '2026-11-22T10:00:05Z',
      finishTime: finish,
      substitutions: { TRIGGER_NAME: trigger, COMMIT_SHA: 'c'.repeat(40), REPO_FULL_NAME: 'acme/infra-live' },
    });
    const cloudbuild = await jsonServer((path, query) => {
      if (path !== '/v1/projects/devstats-p/builds') return { status: 404, body: {} };
      return query.get('pageToken') === null
        ? {
            body: {
              builds: [build('b-2', 'SUCCESS', 'infra-apply-prod', '2026-11-22T10:04:00Z')],
              nextPageToken: 't2',
            },
          }
        : {
            body: {
              builds: [
                build('b-1', 'FAILURE', 'infra-apply-prod', '2026-11-21T10:04:00Z'),
                build('b-0', 'SUCCESS', 'unit-tests', '2026-11-21T09:00:00Z'),
              ],
            },
          };
    });
    const data = join(dir, 'cloudbuild');
    const lines: string[] = [];
    const code = await cli(
      ['backfill', 'cloudbuild', ...window],
      {
        DEVSTATS_DATA_DIR: data,
        DEVSTATS_CONFIG: join(dir, 'devstats.json'),
        GOOGLE_CLOUD_PROJECT: 'devstats-p',
        CLOUDBUILD_API_URL: cloudbuild.url,
      },
      (l) => lines.push(l),
    );
    await cloudbuild.stop();
    assert.equal(code, 0, lines.join('\n'));
    assert.deepEqual(await deploysIn(data), ['cloudbuild:b-1 production failure', 'cloudbuild:b-2 production success']);
  });
});

describe('devstats backfill pagerduty|opsgenie: incident history through the vendors’ APIs (issue 27)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'devstats-backfill-incidents-'));
    writeFileSync(
      join(dir, 'devstats.json'),
      JSON.stringify({
        teams: { payments: { services: ['checkout'] } },
        incidents: { services: { 'Checkout API': 'checkout' } },
      }),
    );
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const window = ['--since', '2026-11-01T00:00:00Z', '--until', '2026-12-01T00:00:00Z'];
  const incidentsIn = async (data: string) => {
    const store = new SqliteStore(join(data, 'devstats.sqlite'));
    const incidents = (await store.events({ kind: 'incident' })).map((i) =>
      i.kind === 'incident' ? `${i.id} ${i.service ?? '-'} ${i.state} ${i.startedAt} ${i.resolvedAt ?? '-'}` : '',
    );
    await store.close();
    return incidents.sort();
  };

  test('PagerDuty: GET /incidents in offset pages, every status, the token as PagerDuty takes it; a 429 waited for', async () => {
    const seen: string[] = [];
    const pd = await jsonServer((path, query, hits) => {
      seen.push(`${path} offset=${query.get('offset') ?? ''} statuses=${query.getAll('statuses[]').join(',')}`);
      if (hits === 2) return { status: 429, body: {}, headers: { 'retry-after': '1' } };
      const offset = Number(query.get('offset'));
      const incident = (id: string, status: string, created: string, resolved?: string) => ({
        id,
        type: 'incident',
        title: `Checkout errors ${id}`,
        status,
        created_at: created,
        resolved_at: resolved ?? null,
        last_status_change_at: resolved ?? created,
        html_url: `https://acme.pagerduty.com/incidents/${id}`,
        service: { id: 'PSVC', type: 'service_reference', summary: 'Checkout API' },
        priority: null,
        urgency: 'high',
      });
      return offset === 0
        ? {
            body: {
              incidents: [incident('Q1', 'resolved', '2026-11-20T10:00:00Z', '2026-11-20T10:45:00Z')],
              limit: 100,
              offset: 0,
              more: true,
            },
          }
        : {
            body: {
              incidents: [incident('Q2', 'acknowledged', '2026-11-21T08:00:00Z')],
              limit: 100,
              offset: 100,
              more: false,
            },
          };
    });
    const data = join(dir, 'pagerduty');
    const lines: string[] = [];
    const code = await cli(
      ['backfill', 'pagerduty', ...window],
      {
        DEVSTATS_DATA_DIR: data,
        DEVSTATS_CONFIG: join(dir, 'devstats.json'),
        PAGERDUTY_API_TOKEN: 'pd-key',
        PAGERDUTY_API_URL: pd.url,
      },
      (l) => lines.push(l),
    );
    await pd.stop();
    assert.equal(code, 0, lines.join('\n'));
    assert.deepEqual(seen[0], '/incidents offset=0 statuses=triggered,acknowledged,resolved');
    assert.deepEqual(seen.at(-1), '/incidents offset=100 statuses=triggered,acknowledged,resolved');
    assert.deepEqual(await incidentsIn(data), [
      'pagerduty:Q1 checkout resolved 2026-11-20T10:00:00.000Z 2026-11-20T10:45:00.000Z',
      'pagerduty:Q2 checkout open 2026-11-21T08:00:00.000Z -',
    ]);
  });

  test('Opsgenie: GET /v2/alerts created in the window, a closed alert closed at createdAt + report.closeTime', async () => {
    let query = '';
    const og = await jsonServer((path, q) => {
      if (path !== '/v2/alerts') return { status: 404, body: {} };
      query = q.get('query') ?? '';
      return {
        body: {
          data: [
            {
              id: 'a-1',
              tinyId: '7',
              message: 'Checkout latency',
              status: 'closed',
              tags: ['service:checkout', 'env:production'],
              priority: 'P2',
              createdAt: '2026-11-22T09:00:00.000Z',
              updatedAt: '2026-11-22T12:00:00.000Z',
              report: { ackTime: 60_000, closeTime: 1_800_000 },
            },
          ],
          took: 0.01,
          requestId: 'r',
        },
      };
    });
    const data = join(dir, 'opsgenie');
    const lines: string[] = [];
    const code = await cli(
      ['backfill', 'opsgenie', ...window],
      {
        DEVSTATS_DATA_DIR: data,
        DEVSTATS_CONFIG: join(dir, 'devstats.json'),
        OPSGENIE_API_KEY: 'og-key',
        OPSGENIE_API_URL: og.url,
      },
      (l) => lines.push(l),
    );
    await og.stop();
    assert.equal(code, 0, lines.join('\n'));
    assert.equal(
      query,
      `createdAt >= ${Date.parse('2026-11-01T00:00:00Z')} AND createdAt < ${Date.parse('2026-12-01T00:00:00Z')}`,
    );
    assert.deepEqual(await incidentsIn(data), [
      'opsgenie:a-1 checkout resolved 2026-11-22T09:00:00.000Z 2026-11-22T09:30:00.000Z',
    ]);
  });
});
