import type { Readable, Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';

/**
 * Reads a request body with the cap enforced while reading, on the bytes received and on the bytes
 * they inflate to both: a body over the cap is never buffered past it (a 0.5 KiB brotli bomb is
 * cut off where it passes the cap), and one declared over it by Content-Length is not read at all.
 * When `keep` is false (the request carries no credentials, so it will be refused whatever it
 * holds) the bytes are only counted, so an unsigned body of any size costs next to no memory.
 */
export interface BodyRead {
  /** The decoded bytes; undefined when not kept or not readable. */
  bytes?: Buffer;
  problem?: 'too_large' | 'unsupported_encoding' | 'unreadable';
}

const DECODERS: Readonly<Record<string, () => Transform>> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

export function readBody(
  stream: Readable,
  headers: Readonly<Record<string, string | undefined>>,
  options: { maxBytes: number; keep: boolean },
): Promise<BodyRead> {
  const declared = Number(headers['content-length']);
  if (Number.isFinite(declared) && declared > options.maxBytes) return Promise.resolve({ problem: 'too_large' });
  const encoding = (headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  const makeDecoder = encoding === 'identity' || encoding === '' ? undefined : DECODERS[encoding];
  if (makeDecoder === undefined && encoding !== 'identity' && encoding !== '')
    return Promise.resolve({ problem: 'unsupported_encoding' });

  // Already read by someone else (a path the server parsed itself): nothing left to read.
  if (stream.readableEnded) return Promise.resolve({});
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let decoded = 0;
    let settled = false;
    const decoder = makeDecoder?.();
    const finish = (result: BodyRead) => {
      if (settled) return;
      settled = true;
      stream.removeListener('data', onData);
      decoder?.destroy();
      // What is left is discarded, never buffered, so the sender can read the answer.
      if (!stream.readableEnded) stream.resume();
      resolve(result);
    };
    const take = (chunk: Buffer) => {
      decoded += chunk.length;
      if (decoded > options.maxBytes) finish({ problem: 'too_large' });
      else if (options.keep) chunks.push(chunk);
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
      finish(options.keep ? { bytes: Buffer.concat(chunks) } : {});
    });
    stream.on('data', onData);
    stream.once('error', () => {
      finish({ problem: 'unreadable' });
    });
    stream.once('end', () => {
      if (decoder !== undefined) decoder.end();
      else finish(options.keep ? { bytes: Buffer.concat(chunks) } : {});
    });
  });
}

/**
 * Refuses, in one pass over the bytes and before `JSON.parse` builds anything, a JSON text nested
 * deeper than `maxDepth` or holding more than `maxValues` values: no webhook nests 64 deep or
 * carries millions of values, and parsing either would cost far more than the check.
 */
export function jsonShapeProblem(bytes: Buffer, limits: { maxDepth: number; maxValues: number }): string | undefined {
  let depth = 0;
  let values = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (b === 0x22) inString = false;
      continue;
    }
    if (b === 0x22) {
      inString = true;
      values++;
    } else if (b === 0x5b || b === 0x7b) {
      if (++depth > limits.maxDepth) return `nested deeper than ${limits.maxDepth}`;
      values++;
    } else if (b === 0x5d || b === 0x7d) depth--;
    else if (b === 0x2c) values++;
    if (values > limits.maxValues) return `more than ${limits.maxValues} values`;
  }
  return undefined;
}
