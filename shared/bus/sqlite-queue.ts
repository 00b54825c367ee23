import { randomUUID } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { isDiskFull, openDatabase } from '../store/sqlite-file.ts';
import type { Logger } from '../log.ts';
import { type Bus, type BusMessage, type Consumer, type Delivery, PublishError, type Subscriber } from './bus.ts';

/**
 * The embedded mode's queue, durable as Pub/Sub is: a message is committed to a SQLite file
 * before `publish` resolves (so before ingest's 202), survives `kill -9` of the process at any
 * point, and is delivered again after a restart when its lease lapsed unacknowledged. At least
 * once, with redelivery and backoff when the consumer throws, then a dead-letter table kept on disk
 * for `devstats replay`.
 */
export interface DeadLetter extends Delivery {
  deadAt: string;
  error: string;
}

interface SqliteQueueOptions {
  path: string;
  logger: Logger;
  /** Deliveries of one message before it is dead-lettered, as Pub/Sub's `maxDeliveryAttempts`. */
  maxAttempts?: number;
  /** Wait before the n-th redelivery: `retryDelayMs * 2^(n-1)`. */
  retryDelayMs?: number;
  /** How long a delivery may run before it is delivered again (Pub/Sub's ack deadline). */
  ackDeadlineMs?: number;
  /** Deliveries handled at once per topic. */
  concurrency?: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  topic TEXT NOT NULL,
  data BLOB NOT NULL,
  attributes TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  available_at INTEGER NOT NULL,
  lease_until INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS messages_due ON messages (topic, available_at);
CREATE TABLE IF NOT EXISTS dead_letters (
  id TEXT PRIMARY KEY,
  topic TEXT NOT NULL,
  data BLOB NOT NULL,
  attributes TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  dead_at TEXT NOT NULL,
  error TEXT NOT NULL
) STRICT;
`;

interface Row {
  seq: number;
  id: string;
  topic: string;
  data: Uint8Array;
  attributes: string;
  attempts: number;
}

function prepareStatements(db: DatabaseSync) {
  const prepare = (sql: string): StatementSync => db.prepare(sql);
  return {
    insert: prepare('INSERT INTO messages (id, topic, data, attributes, available_at) VALUES (?, ?, ?, ?, ?)'),
    due: prepare(
      `SELECT seq, id, topic, data, attributes, attempts FROM messages
       WHERE topic = ? AND available_at <= ? AND (lease_until IS NULL OR lease_until < ?)
       ORDER BY available_at, seq LIMIT ?`,
    ),
    lease: prepare('UPDATE messages SET lease_until = ?, attempts = attempts + 1 WHERE seq = ?'),
    ack: prepare('DELETE FROM messages WHERE seq = ?'),
    retry: prepare('UPDATE messages SET lease_until = NULL, available_at = ? WHERE seq = ?'),
    bury: prepare(
      `INSERT INTO dead_letters (id, topic, data, attributes, attempts, dead_at, error) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET attempts = excluded.attempts, dead_at = excluded.dead_at, error = excluded.error`,
    ),
    pending: prepare('SELECT count(*) AS n FROM messages WHERE topic = ?'),
    deadLetters: prepare(
      'SELECT id, topic, data, attributes, attempts, dead_at, error FROM dead_letters ORDER BY dead_at',
    ),
    unbury: prepare('DELETE FROM dead_letters WHERE id = ?'),
  };
}

export class SqliteQueueBus implements Bus, Subscriber {
  private readonly db: DatabaseSync;
  private readonly statements: ReturnType<typeof prepareStatements>;
  private readonly consumers = new Map<string, Consumer>();
  private readonly running = new Map<string, number>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly logger: Logger;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;
  private readonly ackDeadlineMs: number;
  private readonly concurrency: number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: SqliteQueueOptions) {
    this.logger = options.logger;
    this.maxAttempts = options.maxAttempts ?? 5;
    this.retryDelayMs = options.retryDelayMs ?? 200;
    this.ackDeadlineMs = options.ackDeadlineMs ?? 60_000;
    this.concurrency = options.concurrency ?? 16;
    this.db = openDatabase(options.path, (db) => {
      db.exec(SCHEMA);
    });
    this.statements = prepareStatements(this.db);
  }

  publish(topic: string, message: BusMessage): Promise<string> {
    const id = randomUUID();
    try {
      this.statements.insert.run(id, topic, message.data, JSON.stringify(message.attributes), Date.now());
    } catch (error) {
      return Promise.reject(new PublishError(`the local queue refused the message: ${(error as Error).message}`));
    }
    if (this.consumers.has(topic))
      setImmediate(() => {
        this.pump(topic);
      });
    return Promise.resolve(id);
  }

  /** Delivers the topic's messages to `consumer`, those left from an earlier run first. */
  subscribe(topic: string, consumer: Consumer): void {
    if (this.consumers.has(topic)) throw new Error(`topic ${topic} already has a consumer`);
    this.consumers.set(topic, consumer);
    this.timer ??= setInterval(() => {
      for (const t of this.consumers.keys()) this.pump(t);
    }, 250);
    this.timer.unref();
    setImmediate(() => {
      this.pump(topic);
    });
  }

  /** Dead letters kept on disk, oldest first. */
  deadLetters(): DeadLetter[] {
    return (this.statements.deadLetters.all() as unknown as Array<Row & { dead_at: string; error: string }>).map(
      (r) => ({
        id: r.id,
        topic: r.topic,
        data: Buffer.from(r.data),
        attributes: JSON.parse(r.attributes) as Record<string, string>,
        attempt: r.attempts,
        deadAt: r.dead_at,
        error: r.error,
      }),
    );
  }

  /** Publishes a dead letter again (under a new id) and removes it from the dead letters. */
  async replay(letter: DeadLetter): Promise<string> {
    const id = await this.publish(letter.topic, { data: letter.data, attributes: letter.attributes });
    this.statements.unbury.run(letter.id);
    return id;
  }

  /** Resolves once no message of a consumed topic is waiting or being handled (tests, shutdown). */
  async drain(): Promise<void> {
    for (;;) {
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      const waiting = [...this.consumers.keys()].some(
        (topic) => (this.statements.pending.get(topic) as { n: number }).n > 0,
      );
      if (!waiting) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    if (this.db.isOpen) this.db.close();
  }

  private pump(topic: string): void {
    const consumer = this.consumers.get(topic);
    if (consumer === undefined || this.closed) return;
    const running = this.running.get(topic) ?? 0;
    const room = this.concurrency - running;
    if (room <= 0) return;
    const now = Date.now();
    let rows: Row[];
    try {
      rows = this.statements.due.all(topic, now, now, room) as unknown as Row[];
    } catch (error) {
      this.bookkeepingFailed('reading the queue', error);
      return;
    }
    for (const row of rows) {
      try {
        this.statements.lease.run(now + this.ackDeadlineMs, row.seq);
      } catch (error) {
        // Not leased, so not delivered now: the next pump tries again.
        this.bookkeepingFailed('leasing a message', error);
        return;
      }
      const attempt = row.attempts + 1;
      const delivery: Delivery = {
        id: row.id,
        topic,
        data: Buffer.from(row.data),
        attributes: JSON.parse(row.attributes) as Record<string, string>,
        attempt,
      };
      this.running.set(topic, (this.running.get(topic) ?? 0) + 1);
      const run = this.deliver(consumer, row, delivery)
        .catch((error: unknown) => {
          // Acknowledging or rescheduling failed (a full disk): the lease lapses and it comes again.
          this.bookkeepingFailed('recording a delivery', error);
        })
        .finally(() => {
          this.inFlight.delete(run);
          this.running.set(topic, (this.running.get(topic) ?? 1) - 1);
          this.pump(topic);
        });
      this.inFlight.add(run);
    }
  }

  private lastBookkeepingError = 0;

  /** The queue's own writes failed: logged (once a minute at most), never thrown out of a timer. */
  private bookkeepingFailed(what: string, error: unknown): void {
    if (Date.now() - this.lastBookkeepingError < 60_000) return;
    this.lastBookkeepingError = Date.now();
    this.logger.error(`the local queue failed ${what}; messages wait until it can write again`, {
      error: isDiskFull(error) ? 'the disk is full' : String(error),
    });
  }

  private async deliver(consumer: Consumer, row: Row, delivery: Delivery): Promise<void> {
    try {
      await consumer(delivery);
      if (this.db.isOpen) this.statements.ack.run(row.seq);
    } catch (error) {
      if (!this.db.isOpen) return;
      const fields = { topic: delivery.topic, messageId: delivery.id, attempt: delivery.attempt, error: String(error) };
      // A full disk is the machine's trouble, not the message's: it never uses up its attempts.
      const diskFull = isDiskFull(error);
      if (delivery.attempt >= this.maxAttempts && !diskFull) {
        this.db.exec('BEGIN IMMEDIATE');
        try {
          this.statements.bury.run(
            row.id,
            row.topic,
            row.data,
            row.attributes,
            delivery.attempt,
            new Date().toISOString(),
            String(error).slice(0, 500),
          );
          this.statements.ack.run(row.seq);
          this.db.exec('COMMIT');
        } catch (buryError) {
          if (this.db.isTransaction) this.db.exec('ROLLBACK');
          throw buryError;
        }
        this.logger.error('message dead-lettered after its last delivery attempt', fields);
        return;
      }
      this.logger.warn('consumer failed; redelivering', fields);
      this.reschedule(row.seq, Date.now() + (diskFull ? 1000 : this.retryDelayMs * 2 ** (delivery.attempt - 1)));
    }
  }

  /**
   * Makes a failed delivery due again at `at`. When even that cannot be written (the disk is
   * full), it is tried again every second: otherwise the delivery would wait out its lease (the
   * ack deadline) after the disk has room again.
   */
  private reschedule(seq: number, at: number): void {
    try {
      this.statements.retry.run(at, seq);
    } catch (error) {
      this.bookkeepingFailed('rescheduling a delivery', error);
      setTimeout(() => {
        if (this.db.isOpen && !this.closed) this.reschedule(seq, Date.now());
      }, 1000).unref();
    }
  }
}
