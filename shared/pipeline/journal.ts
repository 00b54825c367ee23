import { type Outcome, sourceOfPath } from './ingest.ts';
import type { ProcessOutcome } from './process.ts';

/** One delivery as the live view shows it: what the sender was answered, then what `process` made of it. */
export interface JournalEntry {
  at: string;
  source: string;
  path: string;
  eventType?: string;
  deliveryId?: string;
  /** The HTTP status the sender got; undefined for what came straight from a Pub/Sub topic. */
  status?: number;
  /** accepted (202), answered (200, nothing to count), refused (4xx), unavailable (503). */
  answer?: 'accepted' | 'answered' | 'refused' | 'unavailable';
  /** Why it was refused or answered. */
  detail?: string;
  /** stored, duplicate (every event was known already) or rejected by `process`. */
  processed?: 'stored' | 'duplicate' | 'rejected';
  events?: number;
  processDetail?: string;
}

/** What the live view says of an answer beside its status: why it was refused, answered or warned. */
function detailOf(outcome: Outcome): string | undefined {
  switch (outcome.reason) {
    case 'answered':
      return outcome.message;
    case 'accepted':
      return outcome.warnings?.join('; ');
    case 'invalid_payload':
      return `${outcome.field}: ${outcome.detail}`;
    case 'unauthorized':
    case 'unsupported_media_type':
    case 'unavailable':
      return outcome.detail;
    default:
      return outcome.reason.replace(/_/g, ' ');
  }
}

/**
 * The latest deliveries of this process, newest first, and each source's last one: what the local
 * live view (`GET /` under `npm start`) shows. Kept in memory and bounded; the store keeps each
 * source's last delivery for good (`noteSourceSeen`).
 */
export class DeliveryJournal {
  private readonly entries: JournalEntry[] = [];
  private readonly bySource = new Map<string, JournalEntry>();
  /** Deliveries refused (4xx) or rejected by `process`, by source and reason: bounded (reasons are few, examples 3). */
  private readonly refused = new Map<string, { source: string; reason: string; count: number; examples: string[] }>();
  private readonly limit: number;

  constructor(limit = 50) {
    this.limit = limit;
  }

  /** What ingest answered. */
  answered(path: string, outcome: Outcome, status: number, at: string): void {
    if (outcome.reason === 'healthy') return;
    const source = 'source' in outcome ? outcome.source : sourceOfPath(path);
    const entry: JournalEntry = {
      at,
      source: source ?? path,
      path,
      status,
      answer: status === 202 ? 'accepted' : status === 503 ? 'unavailable' : status < 300 ? 'answered' : 'refused',
    };
    if ('eventType' in outcome) entry.eventType = outcome.eventType;
    if ('deliveryId' in outcome) entry.deliveryId = outcome.deliveryId;
    const detail = detailOf(outcome);
    if (detail !== undefined) entry.detail = detail;
    if (entry.answer === 'refused')
      this.countRefusal(source ?? 'a path no source serves', outcome.reason.replace(/_/g, ' '), detail ?? path);
    // A path no source serves is not a source: kept among the latest, never as a source's last
    // (20,000 distinct paths probed once grew this map, and the process, for good).
    this.add(entry, source !== undefined);
  }

  /** What `process` made of a delivery: joined to its ingest entry by delivery id, else a new entry. */
  processed(
    attributes: { source?: string; deliveryId?: string; eventType?: string; receivedAt?: string },
    outcome: ProcessOutcome,
    at: string,
  ): void {
    const deliveryId = attributes.deliveryId;
    let entry = this.entries.find((e) => e.deliveryId !== undefined && e.deliveryId === deliveryId);
    if (entry === undefined) {
      entry = { at: attributes.receivedAt ?? at, source: attributes.source ?? 'unknown', path: 'pubsub' };
      if (deliveryId !== undefined) entry.deliveryId = deliveryId;
      if (attributes.eventType !== undefined) entry.eventType = attributes.eventType;
      this.add(entry);
    }
    if (outcome.outcome === 'rejected') {
      entry.processed = 'rejected';
      entry.processDetail = outcome.reason;
      this.countRefusal(entry.source, 'rejected by process', outcome.reason);
      return;
    }
    entry.events = outcome.results.length;
    entry.processed = outcome.results.every((r) => r.result === 'unchanged') ? 'duplicate' : 'stored';
  }

  /** Refusals since this process started, by source and reason, most first, each with its first examples. */
  refusals(): Array<{ source: string; reason: string; count: number; examples: string[] }> {
    return [...this.refused.values()].sort((a, b) => b.count - a.count);
  }

  private countRefusal(source: string, reason: string, example: string): void {
    const key = `${source}\n${reason}`;
    const known = this.refused.get(key);
    // Reasons are a fixed set and sources the registry's: a path no source serves is one key.
    if (known === undefined) this.refused.set(key, { source, reason, count: 1, examples: [example.slice(0, 200)] });
    else {
      known.count++;
      if (known.examples.length < 3 && !known.examples.includes(example.slice(0, 200)))
        known.examples.push(example.slice(0, 200));
    }
  }

  /** Newest first. */
  recent(): readonly JournalEntry[] {
    return [...this.entries].reverse();
  }

  /** Each source's last delivery in this process. */
  lastBySource(): ReadonlyMap<string, JournalEntry> {
    return this.bySource;
  }

  private add(entry: JournalEntry, isSource = true): void {
    this.entries.push(entry);
    if (this.entries.length > this.limit) this.entries.shift();
    if (isSource) this.bySource.set(entry.source, entry);
  }
}
