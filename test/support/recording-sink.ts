import type {
  DatadogSink,
  DeployEvent,
  DistributionPoint,
  DoraDeployment,
  DoraFailure,
  SeriesPoint,
} from '../../shared/export/sink.ts';

/** A sink that keeps what it is given, for tests of what the exporter sends (not how). */
export class RecordingSink implements DatadogSink {
  readonly series_: SeriesPoint[] = [];
  readonly points: DistributionPoint[] = [];
  readonly events: DeployEvent[] = [];
  readonly deployments: DoraDeployment[] = [];
  readonly failures: DoraFailure[] = [];
  requests = 0;

  series(points: SeriesPoint[]): Promise<void> {
    this.requests++;
    this.series_.push(...points);
    return Promise.resolve();
  }

  distributions(points: DistributionPoint[]): Promise<void> {
    this.requests++;
    this.points.push(...points);
    return Promise.resolve();
  }

  event(event: DeployEvent): Promise<void> {
    this.requests++;
    this.events.push(event);
    return Promise.resolve();
  }

  doraDeployment(deployment: DoraDeployment): Promise<void> {
    this.requests++;
    this.deployments.push(deployment);
    return Promise.resolve();
  }

  doraFailure(failure: DoraFailure): Promise<void> {
    this.requests++;
    this.failures.push(failure);
    return Promise.resolve();
  }

  readonly withdrawn: string[] = [];

  withdrawDoraFailure(id: string): Promise<void> {
    this.requests++;
    this.withdrawn.push(id);
    return Promise.resolve();
  }
}
