import { createRequire } from 'node:module';
import type { Request } from 'express';

/**
 * functions-framework parses every body with body-parser before a function runs: up to 1 GB,
 * inflating gzip, deflate and brotli first, whatever the path. A 0.5 KiB brotli bomb posted to a
 * path no function serves was inflated to 300 MiB before its 404 (issue 25). So the parsers are
 * told which kind of server they are being built for:
 * - an HTTP function (ingest) gets none: its handler reads the bodies it wants itself
 *   (shared/body.ts, the cap enforced while reading, within a budget for the whole process), and
 *   any other request is answered without its body being read (Node discards it unread);
 * - a CloudEvent function (process, rollup) gets them bounded: no inflation (neither Eventarc nor
 *   a Pub/Sub push compresses), and at most `EVENT_BODY_LIMIT`; a body they cannot read is
 *   answered with the parser's 4xx, so Pub/Sub redelivers it (and dead-letters it in the end)
 *   rather than the function acknowledging a message it never saw.
 * This reaches into the framework's own `getServer` and copy of body-parser, so it is pinned by
 * tests (test/http/ingest-limits.test.ts) that fail if the framework changes how it parses.
 */
export interface FrameworkRequest extends Request {
  rawBody?: Buffer;
}

/** Pub/Sub's largest message (10 MB) in base64, with its attributes and the CloudEvent around it. */
const EVENT_BODY_LIMIT = '16mb';

type Middleware = (req: FrameworkRequest, res: unknown, next: (error?: unknown) => void) => void;
type ParserFactory = (options?: Record<string, unknown>) => Middleware;
type GetServer = (userFunction: unknown, options: { signatureType?: string; ignoredRoutes?: string | null }) => unknown;

const PATCHED = Symbol.for('devstats.bodyParsersPatched');
const frameworkRequire = createRequire(import.meta.resolve('@google-cloud/functions-framework'));
const bodyParser = frameworkRequire('body-parser') as Record<'json' | 'text' | 'urlencoded' | 'raw', ParserFactory> & {
  [PATCHED]?: true;
};
const server = frameworkRequire('./server.js') as { getServer: GetServer };

/** The signature type of the server being built right now (getServer builds its parsers synchronously). */
let building: string | undefined;

if (bodyParser[PATCHED] !== true) {
  const getServer = server.getServer;
  server.getServer = (userFunction, options) => {
    building = options.signatureType;
    try {
      // An HTTP function's server answers /favicon.ico and /robots.txt itself, with an empty body;
      // '' filters no route, so ingest answers them as any unknown path: a 404 in JSON.
      return getServer(userFunction, options.signatureType === 'http' ? { ...options, ignoredRoutes: '' } : options);
    } finally {
      building = undefined;
    }
  };
  for (const kind of ['json', 'text', 'urlencoded', 'raw'] as const) {
    const makeParser = bodyParser[kind];
    bodyParser[kind] = (options) => {
      if (building === 'http')
        return (_req, _res, next) => {
          next();
        };
      return makeParser({ ...options, inflate: false, limit: EVENT_BODY_LIMIT });
    };
  }
  bodyParser[PATCHED] = true;
}
