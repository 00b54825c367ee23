import type { Readable, Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';

/**
 * Reads a request body with the cap enforced while reading, on the bytes received and on the bytes
 * they inflate to both: a body over the cap is never buffered past it (a 0.5 KiB brotli bomb is
 * cut off where it passes the cap), and one declared over it by Content-Length is not read at all.
 * When `keep` is false (the request carries no credentials, so it will be refused whatever it
 * holds) the bytes are only counted, so an unsigned body of any size costs next to no memory.
 * It calls back rather than returning a promise: see `createIngest` on what a promise costs here.
 */
export interface BodyRead {
  /** The decoded bytes; undefined when not kept or not readable. */
  bytes?: Buffer;
  problem?: 'too_large' | 'unsupported_encoding' | 'unreadable' | 'busy';
  /** What the bytes hold of the budget: given back (`budget.give`) once the request is answered. */
  held?: number;
}

/**
 * The bytes every request of the process may hold in memory at once. The cap bounds one body; this
 * bounds them all together, so many bodies at once (each under the cap, each with a forged
 * signature, which is checked only once the body is read) cannot exhaust the instance: past it, a
 * body is refused (`busy`, a 503 with Retry-After) instead of buffered.
 */
export class BodyBudget {
  readonly limit: number;
  #held = 0;
  constructor(limit: number) {
    this.limit = limit;
  }
  get held(): number {
    return this.#held;
  }
  take(bytes: number): boolean {
    if (this.#held + bytes > this.limit) return false;
    this.#held += bytes;
    return true;
  }
  give(bytes: number): void {
    this.#held = Math.max(0, this.#held - bytes);
  }
}

/**
 * Each encoding's decoder, and what one costs in memory while it runs, charged to the budget: a
 * brotli stream may ask for a window of up to 16 MiB (RFC 7932, section 9.1), gzip and deflate 32
 * KiB plus zlib's state and output chunk. Twelve brotli bombs at once grew the peak by 48 MiB more
 * than their budgeted bytes before their windows were counted.
 */
const DECODERS: Readonly<Record<string, { make: () => Transform; cost: number }>> = {
  gzip: { make: createGunzip, cost: 64 * 1024 },
  'x-gzip': { make: createGunzip, cost: 64 * 1024 },
  deflate: { make: createInflate, cost: 64 * 1024 },
  br: { make: createBrotliDecompress, cost: 16 * 1024 * 1024 },
};

export function readBody(
  stream: Readable,
  headers: Readonly<Record<string, string | undefined>>,
  options: { maxBytes: number; keep: boolean; budget?: BodyBudget },
  done: (read: BodyRead) => void,
): void {
  const declared = Number(headers['content-length']);
  if (Number.isFinite(declared) && declared > options.maxBytes) {
    done({ problem: 'too_large' });
    return;
  }
  const encoding = (headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  const decoding = encoding === 'identity' || encoding === '' ? undefined : DECODERS[encoding];
  if (decoding === undefined && encoding !== 'identity' && encoding !== '') {
    done({ problem: 'unsupported_encoding' });
    return;
  }

  // Already read by someone else (a path the server parsed itself): nothing left to read.
  if (stream.readableEnded) {
    done({});
    return;
  }
  const { budget } = options;
  const decoderCost = decoding?.cost ?? 0;
  if (budget !== undefined && !budget.take(decoderCost)) {
    done({ problem: 'busy' });
    return;
  }
  const chunks: Buffer[] = [];
  let received = 0;
  let decoded = 0;
  let held = 0;
  let settled = false;
  const decoder = decoding?.make();
  const finish = (result: BodyRead) => {
    if (settled) return;
    settled = true;
    stream.removeListener('data', onData);
    decoder?.destroy();
    // What is left is discarded, never buffered, so the sender can read the answer.
    if (!stream.readableEnded) stream.resume();
    // Only a body handed on holds its bytes past this point; the decoder holds nothing.
    budget?.give(decoderCost + (result.bytes === undefined ? held : 0));
    done(result.bytes === undefined ? result : { ...result, held });
  };
  const take = (chunk: Buffer) => {
    if (settled) return;
    decoded += chunk.length;
    if (decoded > options.maxBytes) finish({ problem: 'too_large' });
    else if (options.keep) {
      if (budget !== undefined && !budget.take(chunk.length)) {
        finish({ problem: 'busy' });
        return;
      }
      held += chunk.length;
      chunks.push(chunk);
    }
  };
  const onData = (chunk: Buffer) => {
    received += chunk.length;
    if (received > options.maxBytes) finish({ problem: 'too_large' });
    else if (decoder === undefined) take(chunk);
    else decoder.write(chunk);
  };
  decoder?.on('data', take);
  decoder?.on('error', () => {
    finish({ problem: 'unreadable' });
  });
  decoder?.on('end', () => {
    finish(options.keep ? { bytes: joined(chunks) } : {});
  });
  stream.on('data', onData);
  stream.once('error', () => {
    finish({ problem: 'unreadable' });
  });
  stream.once('end', () => {
    if (decoder !== undefined) decoder.end();
    else finish(options.keep ? { bytes: joined(chunks) } : {});
  });
}

/** A body that came in one chunk (most webhooks: under 64 KiB) is used as it is, not copied. */
const joined = (chunks: Buffer[]): Buffer =>
  chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks);

/**
 * Refuses, in one pass over the bytes and before `JSON.parse` builds anything, a JSON text nested
 * deeper than `maxDepth` or holding more than `maxValues` values: no webhook nests 64 deep or
 * carries millions of values, and parsing either would cost far more than the check.
 *
 * Most of a webhook's bytes are inside strings, so a string is skipped with `indexOf` (native,
 * about 10× faster than stepping through it byte by byte): a quote ends the string unless an odd
 * number of backslashes comes before it. Only the bytes between strings are stepped through.
 */
export function jsonShapeProblem(bytes: Buffer, limits: { maxDepth: number; maxValues: number }): string | undefined {
  let depth = 0;
  let values = 0;
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b === QUOTE) {
      values++;
      const end = closingQuote(bytes, i);
      if (end === -1) return undefined; // unterminated: JSON.parse says where
      i = end + 1;
    } else {
      if (b === 0x5b || b === 0x7b) {
        if (++depth > limits.maxDepth) return `nested deeper than ${limits.maxDepth}`;
        values++;
      } else if (b === 0x5d || b === 0x7d) depth--;
      else if (b === 0x2c) values++;
      i++;
    }
    if (values > limits.maxValues) return `more than ${limits.maxValues} values`;
  }
  return undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The index of the quote that ends the string opened at `open`, or -1 if none does. */
function closingQuote(bytes: Buffer, open: number): number {
  let from = open + 1;
  for (;;) {
    const quote = bytes.indexOf(QUOTE, from);
    if (quote === -1) return -1;
    let backslashes = 0;
    while (quote - backslashes - 1 > open && bytes[quote - backslashes - 1] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote;
    from = quote + 1;
  }
}
