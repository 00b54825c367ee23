/**
 * `devstats report` over a year of an organisation of 500 developers: about 150,000 commits and
 * 30,000 deploys (with their lead times) in the SQLite store. Aim: under 5 s.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Deploy, ShippedChange } from '../shared/events/model.ts';
import { buildReport, previousPeriod, quarter } from '../shared/report/figures.ts';
import { renderHtml } from '../shared/report/render.ts';
import { parseSettings } from '../shared/events/settings.ts';
import { SqliteStore } from '../shared/store/sqlite.ts';

const TEAMS = 20;
const DEVELOPERS = 500;
const SERVICES_PER_TEAM = 5;
const COMMITS = 150_000;
const DEPLOYS = 30_000;
const YEAR_START = Date.parse('2025-10-01T00:00:00Z');
const YEAR_MS = 365 * 86_400_000;

const teams = Object.fromEntries(
  Array.from({ length: TEAMS }, (_, t) => [
    `team-${t}`,
    {
      services: Array.from({ length: SERVICES_PER_TEAM }, (_, s) => `svc-${t}-${s}`),
      repositories: Array.from({ length: SERVICES_PER_TEAM }, (_, s) => `acme/svc-${t}-${s}`),
    },
  ]),
);
const settings = parseSettings({ teams });

// A small deterministic generator, so every run measures the same history.
let seed = 42;
const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;

const dir = mkdtempSync(join(tmpdir(), 'devstats-report-bench-'));
const store = new SqliteStore(join(dir, 'devstats.sqlite'));
const filling = performance.now();
for (let i = 0; i < COMMITS; i++) {
  const developer = Math.floor(random() * DEVELOPERS);
  const team = developer % TEAMS;
  const repository = `acme/svc-${team}-${Math.floor(random() * SERVICES_PER_TEAM)}`;
  const sha = i.toString(16).padStart(40, '0');
  await store.putChange({
    kind: 'commit',
    id: `${repository}@${sha}`,
    repository,
    branch: 'main',
    sha,
    authorLogin: random() < 0.03 ? 'dependabot[bot]' : `dev-${developer}`,
    authorName: `Developer ${developer}`,
    timestamp: new Date(YEAR_START + random() * YEAR_MS).toISOString(),
    isBot: false,
  });
}
for (let i = 0; i < DEPLOYS; i++) {
  const team = Math.floor(random() * TEAMS);
  const service = `svc-${team}-${Math.floor(random() * SERVICES_PER_TEAM)}`;
  const finished = YEAR_START + random() * YEAR_MS;
  const deploy: Deploy = {
    kind: 'deploy',
    id: `ci:${i}`,
    source: 'ci',
    service,
    environment: random() < 0.8 ? 'production' : 'staging',
    status: random() < 0.9 ? 'success' : 'failure',
    startedAt: new Date(finished - 300_000).toISOString(),
    finishedAt: new Date(finished).toISOString(),
    commitSha: i.toString(16),
    repository: `acme/${service}`,
    actor: null,
    externalId: String(i),
  };
  await store.putDeploy(deploy, { shipsChanges: false });
  if (deploy.status === 'success' && deploy.environment === 'production') {
    const shipped: ShippedChange[] = Array.from({ length: 5 }, (_, c) => {
      const lead = 600 + random() * 3 * 86_400;
      return {
        id: `${deploy.id}|${c}`,
        deployId: deploy.id,
        service,
        environment: 'production',
        repository: `acme/${service}`,
        sha: `${i}-${c}`,
        via: 'push',
        committedAt: new Date(finished - lead * 1000).toISOString(),
        deployedAt: deploy.finishedAt,
        leadTimeSeconds: lead,
      };
    });
    await store.recordShipped(deploy, { shipped: shipped, baseline: [], watching: [], first: false });
  }
}
const filled = (performance.now() - filling) / 1000;

const times: number[] = [];
let html = '';
for (let run = 0; run < 3; run++) {
  const started = performance.now();
  const period = quarter('2026-Q3');
  const report = await buildReport(store, settings, { period, comparison: previousPeriod(period) });
  html = renderHtml(report);
  times.push((performance.now() - started) / 1000);
}
await store.close();
rmSync(dir, { recursive: true, force: true });

console.log('\n# report benchmark\n\n| figure | value |\n|---|---|');
console.log(
  `| history | ${COMMITS} commits, ${DEPLOYS} deploys, ${DEVELOPERS} developers in ${TEAMS} teams, one year (filled in ${filled.toFixed(0)} s) |`,
);
console.log(
  `| report 2026-Q3 against Q2, ${TEAMS + 1} teams, HTML (${(html.length / 1024).toFixed(0)} kB): s, median of 3 | ${[...times].sort((a, b) => a - b)[1]?.toFixed(2)} (aim < 5) |`,
);
