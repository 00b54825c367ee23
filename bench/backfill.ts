/**
 * `devstats backfill github` of a year for an organisation of 150 repositories: 150,000 commits
 * (with parents) and 30,000 deployments with their statuses, served by a local server that answers
 * like GitHub's API (REST pages of 100, GraphQL pages of 100), into the SQLite store, with the
 * file sink. Aim: minutes, not hours. `BENCH_BACKFILL_REPOS` scales it down.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main as cli } from '../shared/cli/main.ts';
import { SqliteStore } from '../shared/store/sqlite.ts';
import { FakeGithub } from '../test/support/github-server.ts';

const REPOS = Number(process.env.BENCH_BACKFILL_REPOS ?? 150);
const COMMITS_PER_REPO = 1000;
const DEPLOYS_PER_REPO = 200;
const YEAR_START = Date.parse('2025-12-01T00:00:00Z');
const STEP = (365 * 86_400_000) / COMMITS_PER_REPO;
const sha = (repo: number, n: number) => `${repo.toString(16).padStart(4, '0')}${n.toString(16).padStart(36, '0')}`;
const at = (n: number) => new Date(YEAR_START + n * STEP).toISOString();

const github = new FakeGithub();
github.on('GET', /^\/repos\/acme\/r\d+$/, ({ path }) => ({
  body: { full_name: path.slice(7), default_branch: 'main' },
}));
github.on('GET', /^\/repos\/acme\/r\d+\/commits$/, ({ path, query }) => {
  const repo = Number(/r(\d+)/.exec(path)?.[1]);
  const page = Number(query.get('page') ?? 1);
  const first = COMMITS_PER_REPO - (page - 1) * 100;
  const items = [];
  for (let n = first; n > Math.max(0, first - 100); n--)
    items.push({
      sha: sha(repo, n),
      commit: {
        author: { name: `dev${(repo * 7 + n) % 500}`, email: `dev${(repo * 7 + n) % 500}@acme.example`, date: at(n) },
      },
      author: { login: `dev${(repo * 7 + n) % 500}` },
      parents: n === 1 ? [] : [{ sha: sha(repo, n - 1) }],
    });
  const headers: Record<string, string> = {};
  if (first - 100 > 0) headers.link = `<${github.url}${path}?per_page=100&page=${page + 1}>; rel="next"`;
  return { body: items, headers };
});
github.on('GET', /^\/repos\/acme\/r\d+\/pulls$/, () => ({ body: [] }));
github.on('POST', /^\/graphql$/, ({ body }) => {
  const { name, after } = (body as { variables: { name: string; after: string | null } }).variables;
  const repo = Number(name.slice(1));
  const offset = after === null ? 0 : Number(after);
  const nodes = [];
  for (let i = offset; i < Math.min(DEPLOYS_PER_REPO, offset + 100); i++) {
    const n = COMMITS_PER_REPO - i * (COMMITS_PER_REPO / DEPLOYS_PER_REPO);
    const created = new Date(Date.parse(at(n)) + 3600_000).toISOString();
    nodes.push({
      databaseId: repo * 100_000 + i,
      commitOid: sha(repo, n),
      environment: 'production',
      createdAt: created,
      payload: null,
      creator: { login: 'deployer' },
      statuses: {
        nodes: [
          {
            state: i % 10 === 3 ? 'FAILURE' : 'SUCCESS',
            createdAt: new Date(Date.parse(created) + 300_000).toISOString(),
            logUrl: null,
            environmentUrl: null,
          },
        ],
      },
    });
  }
  return {
    body: {
      data: {
        repository: {
          deployments: {
            pageInfo: { hasNextPage: offset + 100 < DEPLOYS_PER_REPO, endCursor: String(offset + 100) },
            nodes,
          },
        },
      },
    },
  };
});
await github.start();

const dir = mkdtempSync(join(tmpdir(), 'devstats-backfill-bench-'));
const repositories = Array.from({ length: REPOS }, (_, r) => `acme/r${r}`);
writeFileSync(
  join(dir, 'devstats.json'),
  JSON.stringify({
    teams: Object.fromEntries(
      Array.from({ length: 15 }, (_, t) => [
        `team-${t}`,
        {
          repositories: repositories.filter((_, r) => r % 15 === t),
          services: repositories.filter((_, r) => r % 15 === t).map((r) => r.split('/')[1]),
        },
      ]),
    ),
  }),
);
const started = performance.now();
const code = await cli(
  ['backfill', 'github', '--since', '2025-12-01T00:00:00Z', '--until', '2026-12-01T00:00:00Z'],
  {
    DEVSTATS_DATA_DIR: dir,
    DEVSTATS_CONFIG: join(dir, 'devstats.json'),
    GITHUB_TOKEN: 'bench',
    GITHUB_API_URL: github.url,
  },
  () => undefined,
);
const seconds = (performance.now() - started) / 1000;
await github.stop();
const store = new SqliteStore(join(dir, 'devstats.sqlite'));
const deploys = (await store.events({ kind: 'deploy' })).length;
const commits = (await store.commitsBetween('2000-01-01T00:00:00.000Z', '2100-01-01T00:00:00.000Z')).length;
const shipped = (await store.shippedBetween('2000-01-01T00:00:00.000Z', '2100-01-01T00:00:00.000Z')).length;
await store.close();
rmSync(dir, { recursive: true, force: true });
if (code !== 0) throw new Error(`backfill exited ${code}`);

process.stdout.write(`
### backfill github (${REPOS} repositories, a year, local GitHub API)

| figure | value |
| --- | --- |
| commits stored (with parents) | ${commits} |
| deploys stored | ${deploys} |
| lead times recorded | ${shipped} |
| API requests | ${github.requests.length} |
| wall time (s), rollup included | ${seconds.toFixed(1)} |
| items per second (commits + deploys) | ${Math.round((commits + deploys) / seconds)} |
`);
