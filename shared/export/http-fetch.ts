import type { IncomingMessage } from 'node:http';

/**
 * The part of `fetch` the Datadog client and policyFetch use, over `node:http` and `node:https`
 * with keep-alive agents. Node's own `fetch` (undici) costs a `process` cold start about 45 ms of
 * CPU to load on its first request, and more per request after (WHATWG streams); `node:http` is
 * loaded already, by functions-framework. The whole answer is read before it resolves (Datadog's
 * answers are small; one past `MAX_ANSWER_BYTES` fails the request), so the caller's signal
 * bounds the body as well as the headers.
 *
 * The modules come from `process.getBuiltinModule`, not an `import`: an ESM import of `node:http`
 * builds its ESM facade by reading every export, and its lazy `WebSocket` export loads undici.
 */
export interface FetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array | null;
  signal?: AbortSignal | null;
}

export interface FetchAnswer {
  status: number;
  headers: { get(name: string): string | null; forEach(each: (value: string, name: string) => void): void };
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

const MAX_ANSWER_BYTES = 4 * 1024 * 1024;
const http = process.getBuiltinModule('node:http');
const https = process.getBuiltinModule('node:https');
const zlib = process.getBuiltinModule('node:zlib');
const agents = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
};

function decoded(answer: IncomingMessage): NodeJS.ReadableStream {
  const encoding = (answer.headers['content-encoding'] ?? '').toLowerCase();
  if (encoding === 'gzip') return answer.pipe(zlib.createGunzip());
  if (encoding === 'deflate') return answer.pipe(zlib.createInflate());
  if (encoding === 'br') return answer.pipe(zlib.createBrotliDecompress());
  return answer;
}

export function httpFetch(url: string, init: FetchInit = {}): Promise<FetchAnswer> {
  const target = new URL(url);
  const secure = target.protocol === 'https:';
  if (!secure && target.protocol !== 'http:') return Promise.reject(new TypeError(`not an HTTP URL: ${url}`));
  return new Promise((resolve, reject) => {
    const signal = init.signal ?? undefined;
    if (signal?.aborted === true) {
      reject(signal.reason as Error);
      return;
    }
    const request = (secure ? https.request : http.request)(target, {
      method: init.method ?? 'GET',
      headers: init.headers ?? {},
      agent: agents[secure ? 'https:' : 'http:'],
    });
    const abort = () => request.destroy(signal?.reason as Error);
    signal?.addEventListener('abort', abort, { once: true });
    const done = () => signal?.removeEventListener('abort', abort);
    request.once('error', (error) => {
      done();
      reject(error);
    });
    request.once('response', (answer) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const body = decoded(answer);
      body.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) request.destroy(new Error(`Datadog's answer passed ${MAX_ANSWER_BYTES} bytes`));
        else chunks.push(chunk);
      });
      body.once('error', (error: Error) => {
        done();
        reject(error);
      });
      body.once('end', () => {
        done();
        const bytes = Buffer.concat(chunks);
        const headers = answer.headers;
        const header = (name: string) => {
          const value = headers[name.toLowerCase()];
          return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
        };
        resolve({
          status: answer.statusCode ?? 0,
          headers: {
            get: header,
            forEach: (each) => {
              for (const name of Object.keys(headers)) each(header(name) ?? '', name);
            },
          },
          text: () => Promise.resolve(bytes.toString('utf8')),
          arrayBuffer: () => Promise.resolve(new Uint8Array(bytes).buffer),
        });
      });
    });
    request.end(init.body ?? undefined);
  });
}
