/* global process */
// The ingest function as Cloud Functions runs it (the built dist/), with its publish acknowledged
// in-process where Pub/Sub would acknowledge it: the benchmark measures ingest's own work.
// Plain JavaScript so that it loads the build exactly as deployed, with no type stripping.
import { http } from '@google-cloud/functions-framework';
import { ingestHandler } from '../dist/functions/local/http-adapter.js';
import { loadConfig } from '../dist/shared/pipeline/config.js';
import { createLogger } from '../dist/shared/log.js';

let published = 0;
const acknowledgingBus = {
  publish: () => Promise.resolve(String(++published)),
  close: () => Promise.resolve(),
};
http('ingest', ingestHandler({ config: loadConfig(process.env), bus: acknowledgingBus, logger: createLogger() }));
