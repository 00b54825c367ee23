import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import type { DatadogSink, DeployEvent, DistributionPoint, DoraDeployment, DoraFailure, SeriesPoint } from './sink.ts';

/**
 * Without `DD_API_KEY` (embedded mode): every request the API sink would send, appended as one JSON
 * line to `DEVSTATS_DATA_DIR/datadog/<endpoint>.jsonl`, and summarised in the log.
 */
export class FileSink implements DatadogSink {
  requests = 0;
  private readonly dir: string;
  private readonly logger: Logger;

  constructor(dataDir: string, logger: Logger) {
    this.dir = join(dataDir, 'datadog');
    this.logger = logger;
  }

  private async write(endpoint: string, body: unknown, summary: string): Promise<void> {
    this.requests++;
    await mkdir(this.dir, { recursive: true });
    await appendFile(join(this.dir, `${endpoint}.jsonl`), JSON.stringify(body) + '\n');
    this.logger.info('Datadog request written to file (no DD_API_KEY)', { endpoint, summary });
  }

  series(points: SeriesPoint[]): Promise<void> {
    return this.write(
      'series',
      { series: points },
      `${points.length} points: ${[...new Set(points.map((p) => p.metric))].join(', ')}`,
    );
  }

  distributions(points: DistributionPoint[]): Promise<void> {
    return this.write(
      'distribution_points',
      { series: points },
      `${points.length} series: ${[...new Set(points.map((p) => p.metric))].join(', ')}`,
    );
  }

  event(event: DeployEvent): Promise<void> {
    return this.write('events', event, event.title);
  }

  doraDeployment(deployment: DoraDeployment): Promise<void> {
    return this.write('dora_deployment', deployment, `${deployment.service} ${deployment.env} ${deployment.id}`);
  }

  doraFailure(failure: DoraFailure): Promise<void> {
    return this.write('dora_failure', failure, `${failure.services.join(',')} ${failure.env} ${failure.id}`);
  }

  withdrawDoraFailure(id: string): Promise<void> {
    return this.write('dora_failure_withdrawn', { id }, id);
  }
}
