import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chaosTable, runChaos } from '../../bench/chaos.ts';
import { skipUnlessEmulator } from '../support/emulator.ts';

// The short run of `npm run chaos`: every row must lose nothing and count nothing twice.
test(
  'chaos, short: kill -9, redeliveries and Datadog faults lose nothing and count nothing twice',
  { skip: skipUnlessEmulator('pubsub') },
  async (t) => {
    const rows = await runChaos(Number(process.env.CHAOS_DELIVERIES ?? 60));
    for (const line of chaosTable(rows).split('\n')) t.diagnostic(line);
    assert.equal(rows.length, 2);
    for (const row of rows) {
      assert.equal(row.accepted, row.sent, `${row.scenario}: every delivery accepted at last`);
      assert.equal(row.stored, row.accepted, `${row.scenario}: stored`);
      assert.equal(row.lost, 0, `${row.scenario}: lost`);
      assert.equal(row.countedTwice, 0, `${row.scenario}: counted twice`);
      assert.equal(row.parked, 1, `${row.scenario}: the one Datadog refuses is parked, not lost`);
      assert.ok(row.kills >= 2);
    }
  },
);
