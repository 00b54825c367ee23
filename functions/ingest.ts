import { http } from '@google-cloud/functions-framework';
import { ingestHandler } from './http-adapter.ts';
import { instanceRuntime } from './runtime.ts';

// The HTTP target: webhooks in, raw deliveries onto `devstats-raw`.
http('ingest', ingestHandler(instanceRuntime()));
