import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Deploy, Incident } from '../../shared/events/model.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { teamScopes } from '../../shared/metrics/definitions.ts';
import { failedDeploymentRecoveryTimes, incidentTimesToRestore } from '../../shared/metrics/failures.ts';

/*
 * DORA's failed deployment recovery time (change-caused failures only) and incident time to
 * restore, kept apart (issue 27), on a day of billing worked out by hand:
 *   10:00 a succeeds · 11:00 b fails · 12:00 c succeeds (restores b: 1 h)
 *   12:30 an incident of billing starts: tied to c, the last success before it; resolved 15:00 (2.5 h)
 *   14:00 d succeeds: the remedy of c (2 h)
 *   16:00 an incident of search starts, which had no deploy: an external cause; resolved 16:45 (45 min)
 */
const settings = parseSettings({
  teams: {
    payments: { services: ['billing'], repositories: ['acme/billing'] },
    search: { services: ['search'], repositories: ['acme/search'] },
  },
});
const at = (hhmm: string) => `2026-11-20T${hhmm}:00.000Z`;
const deploy = (id: string, finished: string, status: Deploy['status'], sha: string): Deploy => ({
  kind: 'deploy',
  id,
  source: 'ci',
  service: 'billing',
  environment: 'production',
  status,
  startedAt: at(finished.slice(0, 3) + '00'),
  finishedAt: at(finished),
  commitSha: sha,
  repository: 'acme/billing',
  externalId: id,
  actor: null,
});
const history = [
  deploy('ci:a', '10:00', 'success', 'a'),
  deploy('ci:b', '11:00', 'failure', 'b'),
  deploy('ci:c', '12:00', 'success', 'c'),
  deploy('ci:d', '14:00', 'success', 'd'),
];
const incident = (id: string, service: string, started: string, resolved: string): Incident => ({
  kind: 'incident',
  id,
  source: 'pagerduty',
  service,
  environment: 'production',
  startedAt: at(started),
  resolvedAt: at(resolved),
  state: 'resolved',
  updatedAt: at(resolved),
});
const incidents = [incident('pd:1', 'billing', '12:30', '15:00'), incident('pd:2', 'search', '16:00', '16:45')];
const day = { from: at('00:00'), to: '2026-11-21T00:00:00.000Z' };
const scope = (name: string) => teamScopes(settings).find((s) => s.name === name)!;

test('failed deployment recovery time: the failure to its restore, the incident-tied deploy to its remedy; never an external incident', () => {
  assert.deepEqual(failedDeploymentRecoveryTimes(settings, scope('payments'), history, day, incidents), [3600, 7200]);
  assert.deepEqual(failedDeploymentRecoveryTimes(settings, scope('search'), history, day, incidents), []);
});

test('incident time to restore: every production incident of the team, start to resolution, whatever caused it', () => {
  assert.deepEqual(incidentTimesToRestore(settings, scope('payments'), history, day, incidents), [9000]);
  assert.deepEqual(incidentTimesToRestore(settings, scope('search'), history, day, incidents), [2700]);
  assert.deepEqual(
    incidentTimesToRestore(settings, scope('all'), history, day, incidents).sort((a, b) => a - b),
    [2700, 9000],
  );
});
