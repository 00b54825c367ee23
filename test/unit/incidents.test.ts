import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { BusMessage } from '../../shared/bus/bus.ts';
import type { Deploy, Incident } from '../../shared/events/model.ts';
import { Exporter } from '../../shared/export/exporter.ts';
import { doraId } from '../../shared/export/mapping.ts';
import { memoryLogger } from '../../shared/log.ts';
import { teamScopes, windowEndingOn } from '../../shared/metrics/definitions.ts';
import { changeFailureRate, restoresByCause } from '../../shared/metrics/failures.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { buildReport, dayRange, previousPeriod } from '../../shared/report/figures.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { normalizeForStore } from '../../shared/sources/index.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { datadogMonitor, githubIssue, opsgenieAlert, pagerdutyIncident } from '../support/fixtures.ts';
import { RecordingSink } from '../support/recording-sink.ts';

const settings = parseSettings({
  teams: {
    payments: { services: ['checkout'] },
    search: { services: ['search'] },
  },
  incidents: { services: { 'Checkout API': 'checkout', 'Search API': 'search' } },
});
const RECEIVED = '2026-11-20T23:00:00.000Z';
const at = (day: number, hour: number, minute = 0) => new Date(Date.UTC(2026, 10, day, hour, minute)).toISOString();
const sha = (c: string) => c.repeat(40);

function message(source: string, eventType: string, body: unknown, receivedAt = RECEIVED): BusMessage {
  return {
    data: Buffer.from(JSON.stringify(body)),
    attributes: { source, eventType, deliveryId: `${source}:${eventType}:${JSON.stringify(body).length}`, receivedAt },
  };
}
const pd = (type: string, id: string, created: string, occurred: string, service: string | null = 'Checkout API') =>
  message('pagerduty', type, pagerdutyIncident(type, { id, createdAt: created, occurredAt: occurred, service }));

function deploy(id: string, service: string, finishedAt: string, more: Partial<Deploy> = {}): Deploy {
  return {
    kind: 'deploy',
    id,
    source: 'ci',
    service,
    environment: 'production',
    status: 'success',
    startedAt: new Date(Date.parse(finishedAt) - 60_000).toISOString(),
    finishedAt,
    externalId: id,
    ...more,
  };
}

async function storeWith(deploys: Deploy[], sink?: RecordingSink, now = () => new Date(RECEIVED)) {
  const store = new SqliteStore(':memory:');
  for (const d of deploys) await store.putDeploy(d, { shipsChanges: false });
  const logger = memoryLogger();
  const exporter = sink ? new Exporter({ store, sink, settings, logger, now }) : undefined;
  const processMessage = createProcessor({ store, settings, logger, now, ...(exporter ? { exporter } : {}) });
  const deliver = async (messages: BusMessage[]) => {
    for (const m of messages) assert.equal((await processMessage(m)).outcome, 'stored', m.attributes.eventType);
  };
  return { store, deliver };
}

describe('incident sources normalise to one Incident per incident (issue 14)', () => {
  const context = { settings, receivedAt: RECEIVED };
  const only = (source: string, body: unknown, eventType: string): Incident => {
    const normalized = normalizeForStore(source, body, eventType, context);
    assert.ok(normalized.ok, JSON.stringify(normalized));
    assert.equal(normalized.events.length, 1);
    const [event] = normalized.events;
    assert.equal(event?.kind, 'incident');
    return event;
  };

  test('PagerDuty v3: triggered and resolved name the incident, its mapped service, its times', () => {
    const triggered = only(
      'pagerduty',
      pagerdutyIncident('incident.triggered', {
        id: 'PGR0VU2',
        createdAt: '2026-11-20T10:30:00Z',
        occurredAt: '2026-11-20T10:30:05Z',
        service: 'Checkout API',
        title: 'Checkout 500s after deploy:ci:checkout:d2',
      }),
      'incident.triggered',
    );
    assert.deepEqual(triggered, {
      kind: 'incident',
      id: 'pagerduty:PGR0VU2',
      source: 'pagerduty',
      service: 'checkout',
      environment: 'production',
      severity: 'high',
      title: 'Checkout 500s after deploy:ci:checkout:d2',
      startedAt: '2026-11-20T10:30:00.000Z',
      state: 'open',
      updatedAt: '2026-11-20T10:30:05.000Z',
      deployId: 'ci:checkout:d2',
      url: 'https://acme.pagerduty.com/incidents/PGR0VU2',
    });
    const resolved = only(
      'pagerduty',
      pagerdutyIncident('incident.resolved', {
        id: 'PGR0VU2',
        createdAt: '2026-11-20T10:30:00Z',
        occurredAt: '2026-11-20T11:30:00Z',
      }),
      'incident.resolved',
    );
    assert.equal(resolved.state, 'resolved');
    assert.equal(resolved.resolvedAt, '2026-11-20T11:30:00.000Z');
  });

  test('Opsgenie: Create opens, Close resolves (updatedAt in nanoseconds); tags give service, env and sha', () => {
    const closed = only(
      'opsgenie',
      opsgenieAlert('Close', {
        alertId: 'a-1',
        createdAt: '2026-11-20T12:00:00.000Z',
        updatedAt: '2026-11-20T12:10:00.000Z',
        tags: ['service:Search API', 'env:prod', 'sha:abcdef1'],
      }),
      'Close',
    );
    assert.equal(closed.id, 'opsgenie:a-1');
    assert.equal(closed.service, 'search');
    assert.equal(closed.environment, 'production');
    assert.equal(closed.sha, 'abcdef1');
    assert.equal(closed.startedAt, '2026-11-20T12:00:00.000Z');
    assert.equal(closed.resolvedAt, '2026-11-20T12:10:00.000Z');
  });

  test('Datadog monitor: Triggered and Recovered share the alert cycle; staging tags keep it out of production', () => {
    const recovered = only(
      'datadog',
      datadogMonitor('Recovered', { cycleKey: 'c1', at: '2026-11-20T12:20:00.000Z', tags: 'service:checkout,env:stg' }),
      'monitor.Recovered',
    );
    assert.equal(recovered.id, 'datadog:monitor:c1');
    assert.equal(recovered.environment, 'staging');
    assert.equal(recovered.state, 'resolved');
  });

  test('GitHub issues: only issues labelled incident; a close resolves at closed_at', () => {
    const unlabelled = normalizeForStore('github', githubIssue('opened', ['bug']), 'issues', context);
    assert.deepEqual(unlabelled, { ok: true, events: [] });
    const closed = only(
      'github',
      githubIssue('closed', ['incident', 'service:checkout', 'sev:2'], {
        createdAt: '2026-11-20T13:00:00Z',
        updatedAt: '2026-11-20T13:30:00Z',
        closedAt: '2026-11-20T13:30:00Z',
      }),
      'issues',
    );
    assert.equal(closed.service, 'checkout');
    assert.equal(closed.severity, '2');
    assert.equal(closed.resolvedAt, '2026-11-20T13:30:00.000Z');
  });

  test('an incident update without its times is refused at the door, naming the field', () => {
    const body = pagerdutyIncident('incident.triggered', { id: 'P', createdAt: 'x', occurredAt: 'not a time' });
    const normalized = normalizeForStore('pagerduty', body, 'incident.triggered', context);
    assert.deepEqual(normalized, { ok: false, field: 'event.occurred_at', problem: 'is not a time' });
  });
});

/**
 * A known day of checkout and search deploys and incidents, with change failure rate and time to
 * restore computed by hand:
 *   checkout: D4 (18th 09:00), D1 08:00 sha a…, D2b 09:30 failed, D2 10:00, D3 14:00; staging 11:00.
 *   search:   S0 (18th 09:00), S1 09:00.
 *   I1 checkout 10:30–11:30 → D2 (last before it); I2 checkout 10:45–12:45, overlapping → D2 again;
 *   I3 checkout 15:00, resolved 15:30, reopened 16:00, resolved 17:00 → D3, 2 h to restore;
 *   I4 Datadog monitor with no service 12:00–12:20 → no deploy;
 *   I5 a GitHub issue naming sha a… 13:00–13:30 → D1, though D2 and D3 came later;
 *   I6 search on the 19th 12:00–12:10: S0 finished 27 h before, outside the 24 h window → no deploy.
 * Production deployments on the 20th and before, in the 28 days: 5 checkout + 2 search = 7.
 * Failed changes: D2b (failed), D1, D2, D3 (incidents): 4 / 7. payments 4 / 5; search 0 / 2.
 */
const DEPLOYS = [
  deploy('ci:checkout:d4', 'checkout', at(18, 9)),
  deploy('ci:checkout:d1', 'checkout', at(20, 8), { commitSha: sha('a'), repository: 'acme/checkout' }),
  deploy('ci:checkout:d2b', 'checkout', at(20, 9, 30), { status: 'failure' }),
  deploy('ci:checkout:d2', 'checkout', at(20, 10), { commitSha: sha('b'), repository: 'acme/checkout' }),
  deploy('ci:checkout:d3', 'checkout', at(20, 14), { commitSha: sha('c'), repository: 'acme/checkout' }),
  deploy('ci:checkout:stg', 'checkout', at(20, 11), { environment: 'staging' }),
  deploy('ci:search:s0', 'search', at(18, 9)),
  deploy('ci:search:s1', 'search', at(20, 9)),
];
const UPDATES: BusMessage[] = [
  pd('incident.triggered', 'I1', at(20, 10, 30), at(20, 10, 30)),
  pd('incident.acknowledged', 'I1', at(20, 10, 30), at(20, 10, 40)),
  pd('incident.resolved', 'I1', at(20, 10, 30), at(20, 11, 30)),
  pd('incident.triggered', 'I2', at(20, 10, 45), at(20, 10, 45)),
  pd('incident.resolved', 'I2', at(20, 10, 45), at(20, 12, 45)),
  pd('incident.triggered', 'I3', at(20, 15), at(20, 15)),
  pd('incident.resolved', 'I3', at(20, 15), at(20, 15, 30)),
  pd('incident.reopened', 'I3', at(20, 15), at(20, 16)),
  pd('incident.resolved', 'I3', at(20, 15), at(20, 17)),
  message('datadog', 'monitor.Triggered', datadogMonitor('Triggered', { cycleKey: 'c4', at: at(20, 12) })),
  message('datadog', 'monitor.Recovered', datadogMonitor('Recovered', { cycleKey: 'c4', at: at(20, 12, 20) })),
  message(
    'github',
    'issues',
    githubIssue('opened', ['incident', 'service:checkout'], { createdAt: at(20, 13), updatedAt: at(20, 13) }),
  ),
  message(
    'github',
    'issues',
    githubIssue('closed', ['incident', 'service:checkout'], {
      createdAt: at(20, 13),
      updatedAt: at(20, 13, 30),
      closedAt: at(20, 13, 30),
    }),
  ),
  message(
    'opsgenie',
    'Create',
    opsgenieAlert('Create', { alertId: 'I6', createdAt: at(19, 12), updatedAt: at(19, 12), tags: ['service:search'] }),
  ),
  message(
    'opsgenie',
    'Close',
    opsgenieAlert('Close', {
      alertId: 'I6',
      createdAt: at(19, 12),
      updatedAt: at(19, 12, 10),
      tags: ['service:search'],
    }),
  ),
];
// The GitHub issue names the sha of D1 in its body.
for (const m of UPDATES.filter((u) => u.attributes.source === 'github')) {
  const body = JSON.parse(m.data.toString()) as { issue: { body: string } };
  body.issue.body = `Checkout broke. Suspect sha:${sha('a').slice(0, 7)}`;
  (m as { data: Buffer }).data = Buffer.from(JSON.stringify(body));
}

describe('a known history of deploys and incidents (issue 14)', () => {
  const [all, payments, search] = (() => {
    const scopes = teamScopes(settings);
    const by = (name: string) => scopes.find((s) => s.name === name) ?? assert.fail(name);
    return [by('all'), by('payments'), by('search')];
  })();

  test('change failure rate: each failed or incident-linked deployment once, never over 100 %', async () => {
    const { store, deliver } = await storeWith(DEPLOYS);
    await deliver([...UPDATES].reverse()); // the worst order: every resolution before its trigger
    const history = await store.deploysBetween(at(1, 0), at(21, 0));
    const incidents = await store.incidentsBetween(at(1, 0), at(21, 0));
    assert.equal(incidents.length, 6);
    assert.deepEqual(changeFailureRate(settings, all, '2026-11-20', history, 28, incidents), {
      rate: 4 / 7,
      failed: 1,
      rolledBack: 0,
      incidents: 3,
      deployments: 7,
    });
    assert.equal(changeFailureRate(settings, payments, '2026-11-20', history, 28, incidents)?.rate, 4 / 5);
    assert.equal(changeFailureRate(settings, search, '2026-11-20', history, 28, incidents)?.rate, 0);
    // Without the incidents, only the failed deploy: what the figure was before incidents counted.
    assert.equal(changeFailureRate(settings, all, '2026-11-20', history)?.rate, 1 / 7);
  });

  test('time to restore: incident start to last resolution, beside failed deploy to next success', async () => {
    const { store, deliver } = await storeWith(DEPLOYS);
    await deliver(UPDATES);
    const history = await store.deploysBetween(at(1, 0), at(21, 0));
    const incidents = await store.incidentsBetween(at(1, 0), at(21, 0));
    const day = windowEndingOn('2026-11-20', 1, 'UTC');
    const restores = restoresByCause(settings, all, history, day, incidents)
      .map((r) => `${r.cause}:${r.seconds}`)
      .sort();
    assert.deepEqual(restores, [
      'deploy:1800', // D2b 09:30 → D2 10:00
      'incident:1200', // I4
      'incident:1800', // I5
      'incident:3600', // I1
      'incident:7200', // I2
      'incident:7200', // I3: 15:00 → 17:00, the reopening included
    ]);
    const report = await buildReport(store, settings, {
      period: dayRange('2026-11-20', '2026-11-20'),
      comparison: previousPeriod(dayRange('2026-11-20', '2026-11-20')),
      now: new Date(RECEIVED),
    });
    const figures = Object.fromEntries(report.teams.map((t) => [t.team, t.current.incidents]));
    assert.deepEqual(figures, {
      payments: { total: 4, linked: 4, unlinked: 0 },
      search: { total: 0, linked: 0, unlinked: 0 },
      all: { total: 5, linked: 4, unlinked: 1 },
    });
  });

  test('Datadog gets one DORA failure per incident as it stands, and each time to restore once', async () => {
    const sink = new RecordingSink();
    // Each update exported as it comes (Datadog takes points up to an hour old).
    let clock = at(20, 15);
    const { store, deliver } = await storeWith(DEPLOYS, sink, () => new Date(clock));
    const i3 = UPDATES.filter((u) => u.data.toString().includes('"I3"'));
    for (const update of i3) {
      const occurred = (JSON.parse(update.data.toString()) as { event: { occurred_at: string } }).event.occurred_at;
      clock = new Date(Date.parse(occurred) + 60_000).toISOString();
      await deliver([update]);
    }
    await deliver(i3); // every one redelivered: nothing more
    const ids = new Set(sink.failures.map((f) => f.id));
    assert.deepEqual([...ids], ['incident:pagerduty:I3']);
    const last = sink.failures.at(-1);
    assert.equal(last?.startedAt, at(20, 15));
    assert.equal(last?.finishedAt, at(20, 17));
    assert.equal(last?.commitSha, sha('c')); // tied to D3
    assert.deepEqual(last?.services, ['checkout']);
    const restores = sink.points.filter((p) => p.metric === 'devstats.time_to_restore');
    // The first resolution's value (1800 s) went when it came; Datadog cannot take it back.
    assert.deepEqual(
      restores.map((p) => [p.values, p.tags]),
      [[[1800], ['service:checkout', 'env:production', 'team:payments', 'cause:incident']]],
    );
    assert.equal((await store.incident('pagerduty:I3'))?.resolvedAt, at(20, 17));
  });
});

// ---- property: incidents counted once whatever the order ------------------------------------

interface ModelUpdate {
  id: string;
  service: string | null;
  created: string;
  type: 'incident.triggered' | 'incident.acknowledged' | 'incident.resolved' | 'incident.reopened';
  occurred: string;
}

/** The reference: per incident, the earliest start, and the state of its latest update. */
function modelIncidents(updates: readonly ModelUpdate[]) {
  const byId = new Map<string, ModelUpdate[]>();
  for (const u of updates) byId.set(u.id, [...(byId.get(u.id) ?? []), u]);
  return new Map(
    [...byId].map(([id, list]) => {
      const sorted = [...list].sort(
        (a, b) =>
          a.occurred.localeCompare(b.occurred) ||
          Number(a.type === 'incident.resolved') - Number(b.type === 'incident.resolved'),
      );
      const last = sorted[sorted.length - 1] as ModelUpdate;
      const start = [...list.map((u) => u.created), ...list.map((u) => u.occurred)].sort()[0] as string;
      return [
        `pagerduty:${id}`,
        { startedAt: start, resolvedAt: last.type === 'incident.resolved' ? last.occurred : undefined, last },
      ];
    }),
  );
}

describe('property: every incident counted once, whatever its update order (issue 14)', () => {
  const minute = (n: number) => new Date(Date.UTC(2026, 10, 19, 0, n)).toISOString();
  const deploysArb = fc.array(
    fc.record({ service: fc.constantFrom('checkout', 'search'), at: fc.integer({ min: 0, max: 2800 }) }),
    { minLength: 1, maxLength: 8 },
  );
  const incidentArb = fc
    .record({
      service: fc.constantFrom('Checkout API', 'Search API', null),
      start: fc.integer({ min: 0, max: 2800 }),
      steps: fc.array(fc.constantFrom('incident.acknowledged', 'incident.resolved', 'incident.reopened'), {
        maxLength: 4,
      }),
    })
    .map(({ service, start, steps }) => ({ service, start, steps }));

  test('stored incidents equal the reference, and change failure rate stays within 0..1', async () => {
    await fc.assert(
      fc.asyncProperty(
        deploysArb,
        fc.array(incidentArb, { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(), { minLength: 40, maxLength: 40 }),
        async (deploySpecs, incidentSpecs, shuffle) => {
          const deploys = deploySpecs.map((d, i) => deploy(`ci:${d.service}:${i}`, d.service, minute(d.at)));
          const updates: ModelUpdate[] = incidentSpecs.flatMap((spec, n) => {
            const created = minute(spec.start);
            const first: ModelUpdate = {
              id: `P${n}`,
              service: spec.service,
              created,
              type: 'incident.triggered',
              occurred: created,
            };
            return [
              first,
              ...spec.steps.map((type, k) => ({ ...first, type, occurred: minute(spec.start + 5 * (k + 1)) })),
            ];
          });
          // Any order, with some updates delivered twice.
          const order = updates
            .map((u, i) => ({ u, key: shuffle[i % shuffle.length] ?? 0 }))
            .concat(updates.slice(0, 3).map((u, i) => ({ u, key: shuffle[(i + 7) % shuffle.length] ?? 0 })))
            .sort((a, b) => a.key - b.key)
            .map(({ u }) => u);
          const { store, deliver } = await storeWith(deploys);
          await deliver(order.map((u) => pd(u.type, u.id, u.created, u.occurred, u.service)));
          const stored = await store.incidentsBetween(minute(-100), minute(9000));
          const model = modelIncidents(updates);
          assert.equal(stored.length, model.size);
          for (const incident of stored) {
            const expected = model.get(incident.id);
            assert.ok(expected, incident.id);
            assert.equal(incident.startedAt, expected.startedAt, incident.id);
            assert.equal(incident.resolvedAt, expected.resolvedAt, incident.id);
            assert.equal(incident.state, expected.resolvedAt === undefined ? 'open' : 'resolved');
          }
          const history = await store.deploysBetween(minute(-100), minute(9000));
          for (const scope of teamScopes(settings)) {
            const cfr = changeFailureRate(settings, scope, '2026-11-21', history, 28, stored);
            if (cfr === undefined) continue;
            assert.ok(cfr.rate >= 0 && cfr.rate <= 1, `${scope.name}: ${cfr.rate}`);
            // Reference linkage: the service's last deploy within 24 h before the start.
            const linked = new Set<string>();
            for (const incident of stored) {
              if (incident.service === undefined) continue;
              const candidates = history
                .filter(
                  (d) =>
                    d.service === incident.service &&
                    d.finishedAt <= incident.startedAt &&
                    Date.parse(incident.startedAt) - Date.parse(d.finishedAt) <= 24 * 3600_000,
                )
                .sort((a, b) => a.finishedAt.localeCompare(b.finishedAt) || a.id.localeCompare(b.id));
              const pick = candidates[candidates.length - 1];
              if (pick !== undefined && (scope.services === undefined || scope.services.has(pick.service)))
                linked.add(pick.id);
            }
            assert.equal(cfr.incidents, linked.size, scope.name);
          }
          await store.close();
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('incident loose ends (issue 27)', () => {
  test('a Datadog monitor recovery without its trigger is an incident with no time to restore, never 0 s; the trigger, when it comes, gives it', async () => {
    const sink = new RecordingSink();
    const clock = at(20, 16);
    const { store, deliver } = await storeWith([], sink, () => new Date(clock));
    const recovered = datadogMonitor('Recovered', {
      cycleKey: 'cyc-9',
      at: at(20, 15, 40),
      tags: 'service:checkout,env:prod',
    });
    await deliver([message('datadog', 'monitor.Recovered', recovered)]);
    const alone = await store.incident('datadog:monitor:cyc-9');
    assert.equal(alone?.startUnknown, true);
    const window = { from: at(20, 0), to: at(21, 0) };
    const scope = teamScopes(settings).find((s) => s.name === 'payments')!;
    assert.deepEqual(restoresByCause(settings, scope, [], window, [alone]), []);
    assert.deepEqual(
      sink.points.filter((p) => p.metric === 'devstats.time_to_restore'),
      [],
      'no 0 s restore sent',
    );
    assert.deepEqual(sink.failures, [], 'no DORA failure with a made-up start');
    // The trigger arrives late: the start is known, the restore is 40 min.
    await deliver([
      message(
        'datadog',
        'monitor.Triggered',
        datadogMonitor('Triggered', { cycleKey: 'cyc-9', at: at(20, 15), tags: 'service:checkout,env:prod' }),
      ),
    ]);
    const whole = await store.incident('datadog:monitor:cyc-9');
    assert.equal(whole?.startUnknown, undefined);
    assert.equal(whole?.startedAt, at(20, 15));
    assert.equal(whole?.resolvedAt, at(20, 15, 40));
    assert.deepEqual(restoresByCause(settings, scope, [], window, [whole]), [{ cause: 'incident', seconds: 2400 }]);
    assert.deepEqual(
      sink.points.filter((p) => p.metric === 'devstats.time_to_restore').map((p) => p.values),
      [[2400]],
    );
  });

  test('a GitHub issue that loses the incident label is no longer an incident: counted nowhere, its DORA failure taken back', async () => {
    const sink = new RecordingSink();
    const { store, deliver } = await storeWith([], sink, () => new Date(at(20, 12)));
    const opened = githubIssue('opened', ['incident', 'service:checkout'], {
      createdAt: at(20, 10),
      updatedAt: at(20, 10),
    });
    await deliver([message('github', 'issues', opened)]);
    const id = (await store.incidentsBetween(at(20, 0), at(21, 0)))[0]?.id ?? '';
    assert.equal(sink.failures.at(-1)?.id, doraId(`incident:${id}`));
    const unlabeled = githubIssue('labeled', ['service:checkout'], { createdAt: at(20, 10), updatedAt: at(20, 11) });
    unlabeled.action = 'unlabeled';
    unlabeled.label = { id: 1, name: 'incident' };
    await deliver([message('github', 'issues', unlabeled)]);
    assert.equal((await store.incident(id))?.withdrawn, true);
    assert.deepEqual(sink.withdrawn, [doraId(`incident:${id}`)]);
    const report = await buildReport(store, settings, {
      period: dayRange('2026-11-20', '2026-11-20'),
      comparison: previousPeriod(dayRange('2026-11-20', '2026-11-20')),
      now: new Date(at(21, 8)),
    });
    assert.equal(report.teams.find((t) => t.team === 'all')?.current.incidents.total, 0);
    // Labelled again, it is an incident again: the latest update wins.
    const relabeled = githubIssue('labeled', ['incident', 'service:checkout'], {
      createdAt: at(20, 10),
      updatedAt: at(20, 11, 30),
    });
    await deliver([message('github', 'issues', relabeled)]);
    assert.equal((await store.incident(id))?.withdrawn, undefined);
  });
});
