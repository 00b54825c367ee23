import { cloudEvent } from '@google-cloud/functions-framework';
import { rollup } from '../shared/pipeline/rollup.ts';
import { instanceRuntime } from '../shared/pipeline/wiring.ts';
// The framework's body parsers bounded for CloudEvents: no inflation, at most 16 MiB.
import './local/raw-body.ts';

const runtime = instanceRuntime();

// Cloud Scheduler → devstats-tick → this: every 5 minutes, today's gauges and the export retries.
cloudEvent('rollup', async () => {
  const { store, sink, exporter } = await runtime.backend();
  await rollup({
    store,
    sink,
    exporter,
    settings: runtime.settings,
    logger: runtime.logger,
    now: () => new Date(),
    ...(runtime.redeliverGithub ? { redeliverGithub: runtime.redeliverGithub } : {}),
  });
});
