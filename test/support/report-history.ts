import type { Commit, Deploy, ShippedChange } from '../../shared/events/model.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import type { SqliteStore } from '../../shared/store/sqlite.ts';

/*
 * A known history over 2026-Q3 and its predecessor, worked out by hand (UTC days):
 * Q3 billing (payments): successes Jul 10 (a1), Sep 1 12:00 (a2), Sep 20 (a3), Sep 21 (a2 again: a3 was
 * rolled back), a failure Sep 1 10:00 (restored 2 h later); search: a success Aug 5 and a staging deploy.
 * Developers in the 28 days to Sep 30: alice and bob (billing), carol (search); two bots excluded.
 * Q2: one billing success May 5; alice the only developer in June.
 */
export const settings = parseSettings({
  bots: ['release-robot'],
  teams: {
    payments: { services: ['billing'], repositories: ['acme/billing'] },
    search: { services: ['search'], repositories: ['acme/search'] },
  },
});

let n = 0;
export const deploy = (service: string, finishedAt: string, overrides: Partial<Deploy> = {}): Deploy => ({
  kind: 'deploy',
  id: `ci:${++n}`,
  source: 'ci',
  service,
  environment: 'production',
  status: 'success',
  startedAt: new Date(Date.parse(finishedAt) - 600_000).toISOString(),
  finishedAt,
  repository: `acme/${service}`,
  externalId: String(n),
  actor: null,
  ...overrides,
});
const commit = (login: string, repository: string, timestamp: string): Commit => ({
  kind: 'commit',
  id: `${repository}@${++n}`,
  repository,
  branch: 'main',
  sha: String(n),
  authorLogin: login,
  authorName: login,
  timestamp,
  isBot: login.endsWith('[bot]'),
});
const shipped = (d: Deploy, sha: string, leadTimeSeconds: number): ShippedChange => ({
  id: `${d.id}|${sha}`,
  deployId: d.id,
  service: d.service,
  environment: d.environment,
  repository: d.repository ?? '',
  sha,
  via: 'push',
  committedAt: new Date(Date.parse(d.finishedAt) - leadTimeSeconds * 1000).toISOString(),
  deployedAt: d.finishedAt,
  leadTimeSeconds,
});

export const q3 = {
  jul10: deploy('billing', '2026-07-10T12:00:00.000Z', { commitSha: 'a1' }),
  sep1failed: deploy('billing', '2026-09-01T10:00:00.000Z', { commitSha: 'a2', status: 'failure' }),
  sep1: deploy('billing', '2026-09-01T12:00:00.000Z', { commitSha: 'a2' }),
  sep20: deploy('billing', '2026-09-20T12:00:00.000Z', { commitSha: 'a3' }),
  sep21: deploy('billing', '2026-09-21T12:00:00.000Z', { commitSha: 'a2' }),
  aug5: deploy('search', '2026-08-05T12:00:00.000Z'),
  staging: deploy('search', '2026-08-06T12:00:00.000Z', { environment: 'staging' }),
};
export const may5 = deploy('billing', '2026-05-05T12:00:00.000Z', { commitSha: 'a0' });
const commits = [
  commit('alice', 'acme/billing', '2026-09-10T09:00:00.000Z'),
  commit('bob', 'acme/billing', '2026-09-15T09:00:00.000Z'),
  commit('carol', 'acme/search', '2026-09-12T09:00:00.000Z'),
  commit('dependabot[bot]', 'acme/billing', '2026-09-16T09:00:00.000Z'),
  commit('release-robot', 'acme/search', '2026-09-16T09:00:00.000Z'),
  commit('alice', 'acme/billing', '2026-06-20T09:00:00.000Z'),
];

export async function fill(store: SqliteStore): Promise<void> {
  for (const d of [...Object.values(q3), may5]) await store.putDeploy(d, { shipsChanges: false });
  for (const c of commits) await store.putChange(c);
  await store.recordShipped(q3.jul10, {
    shipped: [shipped(q3.jul10, 's1', 7200)],
    baseline: [],
    watching: [],
    first: false,
  });
  await store.recordShipped(q3.sep20, {
    shipped: [shipped(q3.sep20, 's2', 3600), shipped(q3.sep20, 's3', 10800)],
    baseline: [],
    watching: [],
    first: false,
  });
  await store.recordShipped(q3.aug5, {
    shipped: [shipped(q3.aug5, 's4', 1800)],
    baseline: [],
    watching: [],
    first: false,
  });
  await store.recordShipped(may5, { shipped: [shipped(may5, 's0', 14400)], baseline: [], watching: [], first: false });
}
