import { cloudEvent } from '@google-cloud/functions-framework';
import { instanceRuntime } from '../shared/pipeline/wiring.ts';
// The framework's body parsers bounded for CloudEvents: no inflation, at most 16 MiB.
import './local/raw-body.ts';

const runtime = instanceRuntime();

// Cloud Scheduler → devstats-tick → this: every 5 minutes, today's gauges and the export retries.
cloudEvent('rollup', async () => {
  await runtime.rollup();
});
