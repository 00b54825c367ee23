import { type Bus, type BusMessage, PublishError } from '../../shared/bus/bus.ts';

/** A bus that keeps what it is given, and can be told to refuse, as Pub/Sub does in an outage. */
export class RecordingBus implements Bus {
  readonly published: Array<BusMessage & { topic: string }> = [];
  failing = false;

  publish(topic: string, message: BusMessage): Promise<string> {
    if (this.failing) return Promise.reject(new PublishError('Pub/Sub is unavailable'));
    this.published.push({ topic, ...message });
    return Promise.resolve(String(this.published.length));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
