import type { Logger } from '../log.ts';
import { BatchingSink } from './batching-sink.ts';
import { ApiSink } from './datadog-api.ts';
import { FileSink } from './file-sink.ts';
import type { DatadogConfig, DatadogSink } from './sink.ts';

/**
 * The one sink every request to Datadog goes through: the API (with DD_API_KEY) or, without a key,
 * files under the data directory, each behind the batching that puts many points in one request.
 */
export function createDatadogSink(config: DatadogConfig, logger: Logger): DatadogSink {
  if (config.apiKey === undefined) return new BatchingSink(new FileSink(config.dataDir, logger));
  const sink = new ApiSink(config, logger);
  sink.warm();
  return new BatchingSink(sink);
}
