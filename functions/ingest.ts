import { http } from '@google-cloud/functions-framework';
import { ingestHandler } from './http-adapter.ts';
import { liveViewHandler } from './live-view.ts';
import { instanceRuntime } from './runtime.ts';

// The HTTP target: webhooks in, raw deliveries onto `devstats-raw`. Run locally, it also keeps a
// journal of deliveries and serves the live view at `GET /`.
const runtime = instanceRuntime();
http(
  'ingest',
  ingestHandler(
    runtime,
    runtime.journal === undefined ? {} : { journal: runtime.journal, home: liveViewHandler(runtime) },
  ),
);
