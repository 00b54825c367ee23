import {
  DatadogRejected,
  type DatadogSink,
  type DeployEvent,
  type DistributionPoint,
  type DoraDeployment,
  type DoraFailure,
  type SeriesPoint,
} from './sink.ts';

/** Of several points for one (metric, tags, second), only the last counts: send only it. */
function latestPerSecond(points: SeriesPoint[]): SeriesPoint[] {
  const latest = new Map<string, SeriesPoint>();
  for (const p of points) {
    const key = `${p.metric}|${p.tags.join(',')}|${p.timestamp}`;
    latest.delete(key); // re-inserted last, so the order of what remains follows the newest
    latest.set(key, p);
  }
  return [...latest.values()];
}

/** How long distribution points wait for company before their request goes. */
const DISTRIBUTION_LINGER_MS = 20;

interface Waiting<P> {
  points: P[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Points from deliveries handled at the same time share requests: each call waits for the
 * batch it joined, so a failed request still fails every delivery in it (and each is redelivered).
 */
export class BatchingSink implements DatadogSink {
  private readonly inner: DatadogSink;
  private readonly waiting = {
    series: [] as Array<Waiting<SeriesPoint>>,
    distributions: [] as Array<Waiting<DistributionPoint>>,
  };
  private readonly scheduled = { series: false, distributions: false };
  private readonly lingerMs: number;
  private lastJoin = 0;
  /** Series requests go one at a time, in order: Datadog keeps the last count received per second. */
  private seriesInOrder: Promise<unknown> = Promise.resolve();

  constructor(inner: DatadogSink, options: { lingerMs?: number } = {}) {
    this.inner = inner;
    this.lingerMs = options.lingerMs ?? DISTRIBUTION_LINGER_MS;
  }

  get requests(): number {
    return this.inner.requests;
  }

  series(points: SeriesPoint[]): Promise<void> {
    return this.join(this.waiting.series, points);
  }

  distributions(points: DistributionPoint[]): Promise<void> {
    return this.join(this.waiting.distributions, points);
  }

  event(event: DeployEvent): Promise<void> {
    return this.inner.event(event);
  }

  doraDeployment(deployment: DoraDeployment): Promise<void> {
    return this.inner.doraDeployment(deployment);
  }

  doraFailure(failure: DoraFailure): Promise<void> {
    return this.inner.doraFailure(failure);
  }

  withdrawDoraFailure(id: string): Promise<void> {
    return this.inner.withdrawDoraFailure(id);
  }

  private join<P>(queue: Array<Waiting<P>>, points: P[]): Promise<void> {
    return new Promise((resolve, reject) => {
      queue.push({ points, resolve, reject });
      if (queue === (this.waiting.series as unknown)) {
        if (this.scheduled.series) return;
        this.scheduled.series = true;
        // After the I/O callbacks already due: deliveries finishing together land in one batch.
        setImmediate(() => {
          this.scheduled.series = false;
          this.flush(this.waiting.series.splice(0), (batch) => {
            const sent = this.seriesInOrder.then(() => this.inner.series(latestPerSecond(batch)));
            this.seriesInOrder = sent.catch(() => undefined);
            return sent;
          });
        });
      } else {
        // Distributions come last in an export, after its event and DORA requests: they linger for
        // the deliveries handled alongside, whose requests end at other moments, until none joined
        // for `lingerMs` (and never more than ten times that).
        this.lastJoin = Date.now();
        if (this.scheduled.distributions) return;
        this.scheduled.distributions = true;
        const firstJoin = this.lastJoin;
        const wait = () => {
          const quiet = Date.now() - this.lastJoin >= this.lingerMs;
          if (!quiet && Date.now() - firstJoin < 10 * this.lingerMs) {
            setTimeout(wait, this.lingerMs - (Date.now() - this.lastJoin));
            return;
          }
          this.scheduled.distributions = false;
          this.flush(this.waiting.distributions.splice(0), (batch) => this.inner.distributions(batch));
        };
        setTimeout(wait, this.lingerMs);
      }
    });
  }

  private flush<P>(batch: Array<Waiting<P>>, send: (points: P[]) => Promise<void>): void {
    if (batch.length === 0) return;
    send(batch.flatMap((w) => w.points)).then(
      () => {
        for (const w of batch) w.resolve();
      },
      (error: unknown) => {
        // Refused for what it holds: each delivery's points alone, so only the bad one fails.
        if (error instanceof DatadogRejected && batch.length > 1) {
          for (const w of batch) send(w.points).then(w.resolve, w.reject);
          return;
        }
        for (const w of batch) w.reject(error);
      },
    );
  }
}
