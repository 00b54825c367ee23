import { http, type HttpFunction } from '@google-cloud/functions-framework';
import { ingestHandler } from './local/http-adapter.ts';
import { instanceRuntime } from '../shared/pipeline/wiring.ts';

// The HTTP target: webhooks in, raw deliveries onto `devstats-raw`. Run locally, it also keeps a
// journal of deliveries and serves the live view at `GET /`, loaded on its first request (the
// report's code never weighs on a cold start).
const runtime = instanceRuntime();
let liveView: Promise<HttpFunction> | undefined;
const home: HttpFunction = (req, res) => {
  liveView ??= import('./local/live-view.ts').then(({ liveViewHandler }) => liveViewHandler(runtime));
  void liveView.then((handler) => {
    handler(req, res);
  });
};
http('ingest', ingestHandler(runtime, runtime.journal === undefined ? {} : { journal: runtime.journal, home }));
