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
 * One kind of point on its way: at most one request in flight; what joins meanwhile waits and goes
 * together in the next request, when that one returns. So a burst takes about as many requests as
 * round trips fit in it, whatever the number of deliveries, and a lone delivery waits for none.
 */
class Lane<P> {
  private waiting: Array<Waiting<P>> = [];
  private inFlight = false;
  private scheduled = false;
  private readonly send: (points: P[]) => Promise<void>;
  /** When the waiting points go, once none is in flight (`go` sends them). */
  private readonly delay: (go: () => void) => void;

  constructor(send: (points: P[]) => Promise<void>, delay: (go: () => void) => void) {
    this.send = send;
    this.delay = delay;
  }

  join(points: P[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ points, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.inFlight || this.scheduled || this.waiting.length === 0) return;
    this.scheduled = true;
    this.delay(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const batch = this.waiting.splice(0);
    if (batch.length === 0) return;
    this.inFlight = true;
    this.send(batch.flatMap((w) => w.points))
      .then(
        () => {
          for (const w of batch) w.resolve();
        },
        async (error: unknown) => {
          // Refused for what it holds: each delivery's points alone, one after another (still one
          // request in flight, in order), so only the bad one fails.
          if (error instanceof DatadogRejected && batch.length > 1) {
            for (const w of batch) await this.send(w.points).then(w.resolve, w.reject);
            return;
          }
          for (const w of batch) w.reject(error);
        },
      )
      .finally(() => {
        this.inFlight = false;
        this.schedule();
      });
  }
}

/**
 * Points from deliveries handled at the same time share requests: each call waits for the
 * batch it joined, so a failed request still fails every delivery in it (and each is redelivered).
 */
export class BatchingSink implements DatadogSink {
  private readonly inner: DatadogSink;
  /** Series go one request at a time, in order: Datadog keeps the last count received per second. */
  private readonly seriesLane: Lane<SeriesPoint>;
  private readonly distributionLane: Lane<DistributionPoint>;
  private lastJoin = 0;

  constructor(inner: DatadogSink, options: { lingerMs?: number } = {}) {
    this.inner = inner;
    const lingerMs = options.lingerMs ?? DISTRIBUTION_LINGER_MS;
    // After the I/O callbacks already due: deliveries finishing together land in one batch.
    this.seriesLane = new Lane(
      (points) => inner.series(latestPerSecond(points)),
      (go) => setImmediate(go),
    );
    // Distributions come last in an export, after its event and DORA requests: they linger for
    // the deliveries handled alongside, whose requests end at other moments, until none joined
    // for `lingerMs` (and never more than ten times that).
    this.distributionLane = new Lane(
      (points) => inner.distributions(points),
      (go) => {
        const firstJoin = Date.now();
        const wait = () => {
          const quiet = Date.now() - this.lastJoin >= lingerMs;
          if (!quiet && Date.now() - firstJoin < 10 * lingerMs) {
            setTimeout(wait, lingerMs - (Date.now() - this.lastJoin));
            return;
          }
          go();
        };
        setTimeout(wait, Math.max(0, lingerMs - (Date.now() - this.lastJoin)));
      },
    );
  }

  get requests(): number {
    return this.inner.requests;
  }

  series(points: SeriesPoint[]): Promise<void> {
    return this.seriesLane.join(points);
  }

  distributions(points: DistributionPoint[]): Promise<void> {
    this.lastJoin = Date.now();
    return this.distributionLane.join(points);
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
}
