import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type ChildProcess, fork } from 'node:child_process';
import { brotliCompressSync, constants, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import {
  ciDeployment,
  circleciWorkflowCompleted,
  datadogMonitor,
  githubExamples,
  githubMergedPullRequest,
  githubPush,
  opsgenieAlert,
  pagerdutyIncident,
  spinnakerPipelineEvent,
  terraformNotification,
} from '../support/fixtures.ts';
import { sign } from '../support/signing.ts';

const SECRET = 'fuzz-secret';
const RUNS = Number(process.env.DEVSTATS_FUZZ_RUNS ?? 5000);
const EXPECTED = new Set([200, 202, 400, 401, 404, 405, 413, 415]);
/** Every answer comes within this, whatever the request (GitHub gives a webhook 10 s). */
const ANSWER_WITHIN_MS = 2000;
/**
 * What ingest's process may grow by under the whole fuzz: its peak resident set, and what its JS
 * heap still holds after a full collection. Measured on 2026-12-06: 42–70 MiB at the peak (the body budget is 64) and
 * 1 MiB held; against npm start, RSS plateaus near 200 MiB (20,000 and 60,000 hostile
 * requests alike) with the heap back to its size before the load.
 */
const RSS_GROWTH_BOUND = 100 * 1024 * 1024;
const RETAINED_HEAP_BOUND = 8 * 1024 * 1024;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const seeds: Array<[path: string, event: string, body: Json]> = [
  ['/github', 'push', githubPush() as Json],
  ['/github', 'pull_request', githubMergedPullRequest() as Json],
  ['/github', 'deployment_status', githubExamples('deployment_status')[0] as Json],
  ['/github', 'ping', githubExamples('ping')[0] as Json],
  ['/spinnaker', '', spinnakerPipelineEvent() as Json],
  [
    '/spinnaker',
    '',
    { eventName: 'spinnaker_events', payload: spinnakerPipelineEvent('orca:pipeline:failed') } as Json,
  ],
  ['/terraform', '', terraformNotification() as Json],
  ['/terraform', '', terraformNotification('verification', null) as Json],
  ['/deployments', '', ciDeployment() as Json],
  ['/circleci', '', circleciWorkflowCompleted() as Json],
  [
    '/pagerduty',
    '',
    pagerdutyIncident('incident.triggered', {
      id: 'Q1',
      createdAt: '2026-11-20T10:00:00Z',
      occurredAt: '2026-11-20T10:00:00Z',
      service: 'billing',
    }) as Json,
  ],
  [
    '/opsgenie',
    '',
    opsgenieAlert('Create', {
      alertId: 'a1',
      createdAt: '2026-11-20T10:00:00Z',
      updatedAt: '2026-11-20T10:00:00Z',
    }) as Json,
  ],
  ['/datadog', '', datadogMonitor('Triggered', { cycleKey: 'c1', at: '2026-11-20T10:00:00Z' }) as Json],
];

/** Values an id, tag or path can choke on, and sizes and shapes at and past the limits. */
const deep = (depth: number): Json => (depth === 0 ? 'bottom' : [deep(depth - 1)]);
const hostileStrings: Json[] = [
  '\ud800',
  'billing\udfff',
  '\udc00\ud800',
  'a\u0000b',
  '\u0000',
  '\u001b[31mred',
  'x'.repeat(1024 * 1024),
  'y'.repeat(200_000),
  '../../etc/passwd',
  '%00%2F',
];

type Path = Array<string | number>;

/** Every path into a JSON value, so mutations can aim at the fields ingest reads. */
function pathsOf(value: Json, prefix: Path = []): Path[] {
  if (value === null || typeof value !== 'object') return [prefix];
  const children = Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value);
  return [prefix, ...children.flatMap(([key, child]) => pathsOf(child, [...prefix, key]))];
}

/** `value` with the node at `path` replaced, or deleted when `replacement` is undefined. */
function replaceAt(value: Json, path: Path, replacement: Json | undefined): Json {
  const [key, ...rest] = path;
  if (key === undefined) return replacement ?? null;
  if (Array.isArray(value)) {
    const copy = [...value];
    if (rest.length === 0 && replacement === undefined) copy.splice(Number(key), 1);
    else copy[Number(key)] = replaceAt(copy[Number(key)] ?? null, rest, replacement);
    return copy;
  }
  if (value === null || typeof value !== 'object') return value;
  if (rest.length === 0 && replacement === undefined) {
    return Object.fromEntries(Object.entries(value).filter(([k]) => k !== String(key)));
  }
  return { ...value, [String(key)]: replaceAt(value[String(key)] ?? null, rest, replacement) };
}

const nastyValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
  fc.constantFrom<Json>(...hostileStrings, deep(40), deep(70), { a: { b: { c: deep(30) } } }),
  fc.constantFrom<Json>(null, '', -1, 1e308, '__proto__', '💥'.repeat(1000), [], {}, { __proto__: { polluted: true } }),
  fc.string({ unit: 'grapheme', maxLength: 200 }),
);

const bodyMutation = fc.oneof(
  // A structural change: one field replaced by anything JSON can say, or removed.
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: nastyValue }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  // Byte-level damage: truncation, or a few bytes overwritten.
  fc.record({ kind: fc.constant('truncate' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({
    kind: fc.constant('bytes' as const),
    edits: fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 })), {
      minLength: 1,
      maxLength: 8,
    }),
  }),
  fc.record({ kind: fc.constant('raw' as const), bytes: fc.uint8Array({ maxLength: 512 }) }),
);

const damagedHeaders = fc.record({
  contentType: fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'application/vnd.github+json',
    'text/plain',
    'application/json; charset=utf-16',
    '',
    ';;;',
  ),
  signature: fc.constantFrom('valid', 'missing', 'garbage', 'other-secret'),
  method: fc.constantFrom('POST', 'POST', 'POST', 'PUT', 'GET'),
  path: fc.constantFrom('', '', '', '/', '/../github', '/github/extra', '//github'),
  extraHeader: fc.option(
    fc.tuple(fc.constantFrom('x-github-event', 'x-github-delivery', 'authorization'), fc.string({ maxLength: 50 })),
  ),
});

type BodyMutation = typeof bodyMutation extends fc.Arbitrary<infer M> ? M : never;

// Most deliveries keep valid headers, so the mutated bodies get past authentication.
const headerMutation = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constant({
      contentType: 'application/json',
      signature: 'valid',
      method: 'POST',
      path: '',
      extraHeader: null,
    } as const),
  },
  { weight: 1, arbitrary: damagedHeaders },
);

function mutate(body: Json, mutation: BodyMutation): Buffer {
  const text = Buffer.from(JSON.stringify(body));
  switch (mutation.kind) {
    case 'replace':
    case 'delete': {
      const paths = pathsOf(body);
      const path = paths[mutation.at % paths.length] ?? [];
      const value = mutation.kind === 'replace' ? mutation.value : undefined;
      return Buffer.from(JSON.stringify(replaceAt(body, path, value)));
    }
    case 'truncate':
      return text.subarray(0, Math.floor(text.length * mutation.at));
    case 'bytes': {
      const copy = Buffer.from(text);
      for (const [at, byte] of mutation.edits) copy[Math.min(copy.length - 1, Math.floor(copy.length * at))] = byte;
      return copy;
    }
    case 'raw':
      return Buffer.from(mutation.bytes);
  }
}

/** Ingest in a process of its own (functions-framework's real server), so its memory is its own. */
let child: ChildProcess;
const server = { url: '' };
const answers: Array<(message: unknown) => void> = [];
const next = () => new Promise<unknown>((resolve) => answers.push(resolve));
interface Usage {
  rss: number;
  maxRss: number;
  heapUsed: number;
}
async function usage(): Promise<Usage> {
  const answer = next();
  child.send('usage');
  return (await answer) as Usage;
}
let atStart: Usage;
before(async () => {
  child = fork(new URL('../support/ingest-child.ts', import.meta.url), [], {
    execArgv: ['--expose-gc'],
    env: { ...process.env, MAX_BODY_BYTES: '1000000', SECRET },
  });
  child.on('message', (message) => answers.shift()?.(message));
  server.url = ((await next()) as { url: string }).url;
  atStart = await usage();
});
after(() => {
  child.send('stop');
});

test(`${RUNS} mutated deliveries: never a 5xx, always a JSON answer`, async () => {
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...seeds),
      bodyMutation,
      headerMutation,
      async ([path, event, seed], mutation, h) => {
        const body = mutate(seed, mutation);
        const secret = h.signature === 'other-secret' ? 'nope' : SECRET;
        const headers: Record<string, string> = {};
        if (h.contentType !== '') headers['content-type'] = h.contentType;
        if (path === '/github') {
          headers['x-github-event'] = event;
          headers['x-github-delivery'] = 'fuzz';
          if (h.signature !== 'missing')
            headers['x-hub-signature-256'] = h.signature === 'garbage' ? 'sha256=zz' : sign.github(body, secret);
        } else if (path === '/terraform') {
          if (h.signature !== 'missing')
            headers['x-tfe-notification-signature'] = h.signature === 'garbage' ? '%%' : sign.terraform(body, secret);
        } else if (path === '/circleci') {
          if (h.signature !== 'missing') {
            headers['circleci-signature'] =
              h.signature === 'garbage' ? 'v1=,,v1' : `v1=${sign.github(body, secret).slice('sha256='.length)}`;
          }
        } else if (path === '/pagerduty') {
          if (h.signature !== 'missing') {
            headers['x-pagerduty-signature'] =
              h.signature === 'garbage' ? 'v1=' : `v1=${sign.github(body, secret).slice('sha256='.length)}`;
          }
        } else if (h.signature !== 'missing') {
          headers.authorization = h.signature === 'garbage' ? 'Basic ###' : sign.bearer(secret);
        }
        if (h.extraHeader !== null) headers[h.extraHeader[0]] = h.extraHeader[1].replace(/[^\x20-\x7e]/g, '');
        const started = performance.now();
        const response = await fetch(server.url + (h.path === '' ? path : h.path.replace('github', path.slice(1))), {
          method: h.method,
          headers,
          body: h.method === 'GET' ? undefined : body,
        });
        const text = await response.text();
        assert.ok(performance.now() - started < ANSWER_WITHIN_MS, `answered in ${performance.now() - started} ms`);
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        assert.ok(EXPECTED.has(response.status), `status ${response.status}: ${text}`);
        assert.doesNotThrow(() => JSON.parse(text), `not JSON: ${text.slice(0, 200)}`);
      },
    ),
    { numRuns: RUNS, seed: Number(process.env.DEVSTATS_FUZZ_SEED ?? 20261122) },
  );
  // The mutations must reach every stage of ingest, or the fuzz proves little.
  for (const status of [202, 400, 401, 415])
    assert.ok((statuses.get(status) ?? 0) > 0, `no ${status} among ${JSON.stringify([...statuses])}`);
});

/** A body in one of the ways a compressed request can be wrong. */
const compressedBody = fc.constantFrom(
  'valid-gzip',
  'valid-br',
  'bomb-br',
  'bomb-gzip',
  'bomb-deflate',
  'truncated-gzip',
  'truncated-br',
  'stacked-gzip-br',
  'garbage',
);
const BOMB_BYTES = 64 * 1024 * 1024;
const compressedBodies = (() => {
  const valid = Buffer.from(JSON.stringify(ciDeployment()));
  const spaces = Buffer.alloc(BOMB_BYTES, ' ');
  const bomb = {
    br: brotliCompressSync(spaces, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
    gzip: gzipSync(spaces, { level: 9 }),
    deflate: deflateSync(spaces, { level: 9 }),
  };
  const gzip = gzipSync(valid);
  const br = brotliCompressSync(valid);
  return {
    valid,
    bodies: {
      'valid-gzip': gzip,
      'valid-br': br,
      'bomb-br': bomb.br,
      'bomb-gzip': bomb.gzip,
      'bomb-deflate': bomb.deflate,
      'truncated-gzip': gzip.subarray(0, Math.floor(gzip.length / 2)),
      'truncated-br': br.subarray(0, Math.floor(br.length / 2)),
      'stacked-gzip-br': brotliCompressSync(gzip),
      garbage: Buffer.from('\x1f\x8b\x08 not really gzip'),
    } satisfies Record<string, Buffer>,
  };
})();

test(`${Math.ceil(RUNS / 10)} compressed bodies on every path and method: a 2xx or 4xx within ${ANSWER_WITHIN_MS} ms, never inflated past the cap`, async () => {
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(
      compressedBody,
      fc.constantFrom(
        'gzip',
        'br',
        'deflate',
        'x-gzip',
        'GZIP',
        ' br ',
        'gzip, br',
        'compress',
        'zstd',
        'identity',
        '',
      ),
      fc.constantFrom('POST', 'POST', 'PUT', 'GET', 'DELETE', 'PATCH'),
      fc.constantFrom('/deployments', '/github', '/nope', '/', '/GITHUB', '/healthz', '/deployments/x', '/favicon.ico'),
      fc.boolean(),
      async (kind, encoding, method, path, signed) => {
        const body = compressedBodies.bodies[kind];
        const headers: Record<string, string> = {
          'content-type': 'application/json',
          'content-length': String(body.length),
          'x-github-event': 'push',
          'x-github-delivery': 'fuzz',
        };
        if (encoding !== '') headers['content-encoding'] = encoding;
        // Signed over what it inflates to, as a sender signs; a bomb's signature is only a header.
        if (signed) {
          headers.authorization = sign.bearer(SECRET);
          headers['x-hub-signature-256'] = sign.github(compressedBodies.valid, SECRET);
        }
        const started = performance.now();
        const response = await fetch(server.url + path, {
          method,
          headers,
          ...(method === 'GET' ? {} : { body }),
        });
        const text = await response.text();
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        assert.ok(performance.now() - started < ANSWER_WITHIN_MS, `answered in ${performance.now() - started} ms`);
        assert.ok(
          EXPECTED.has(response.status),
          `${method} ${path} ${kind} as ${encoding}: ${response.status} ${text}`,
        );
        if (kind.startsWith('bomb') && response.status === 202) assert.fail(`a bomb was accepted: ${text}`);
        assert.doesNotThrow(() => JSON.parse(text), `not JSON: ${text.slice(0, 200)}`);
      },
    ),
    { numRuns: Math.ceil(RUNS / 10), seed: Number(process.env.DEVSTATS_FUZZ_SEED ?? 20261206) },
  );
  for (const status of [202, 404, 405, 413, 415])
    assert.ok((statuses.get(status) ?? 0) > 0, `no ${status} among ${JSON.stringify([...statuses])}`);
});

test('after the fuzz: ingest grew within the stated bounds', async (t) => {
  const now = await usage();
  const peak = now.maxRss - atStart.maxRss;
  const held = now.heapUsed - atStart.heapUsed;
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  t.diagnostic(
    `ingest RSS ${mib(atStart.rss)} MiB before, peak +${mib(peak)} MiB (bound ${mib(RSS_GROWTH_BOUND)}), heap after a full collection +${mib(held)} MiB (bound ${mib(RETAINED_HEAP_BOUND)})`,
  );
  assert.ok(peak < RSS_GROWTH_BOUND, `ingest's peak resident set grew by ${mib(peak)} MiB`);
  assert.ok(held < RETAINED_HEAP_BOUND, `ingest's heap holds ${mib(held)} MiB more after a full collection`);
});
