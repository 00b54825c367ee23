import { createRequire } from 'node:module';
import type { Request } from 'express';
import { INGEST_PATHS, normalPath } from '../shared/ingest.ts';

/**
 * functions-framework parses every body with body-parser before our handler runs: up to 1 GB,
 * inflating gzip, deflate and brotli first, and answering a failure itself with an HTML page (and
 * a stack trace in the log) before any signature check. Ingest's paths are left alone here: their
 * handler reads the body itself (shared/body.ts), with the cap enforced while reading. For any
 * other path (the process and rollup targets' CloudEvents) the parsers run, their errors kept on
 * the request for the handler to answer in JSON. This reaches into the framework's own copy of
 * body-parser, so it is pinned by tests (test/http/ingest.test.ts, "truncated JSON", "brotli")
 * that fail if the framework changes how it parses.
 */
export interface FrameworkRequest extends Request {
  rawBody?: Buffer;
  bodyParserError?: { type?: string; status?: number };
}

type Middleware = (req: FrameworkRequest, res: unknown, next: (error?: unknown) => void) => void;
type ParserFactory = (options?: unknown) => Middleware;

const PATCHED = Symbol.for('devstats.bodyParsersPatched');
const frameworkRequire = createRequire(import.meta.resolve('@google-cloud/functions-framework'));
const bodyParser = frameworkRequire('body-parser') as Record<'json' | 'text' | 'urlencoded' | 'raw', ParserFactory> & {
  [PATCHED]?: true;
};
const ingestPaths = new Set(INGEST_PATHS);
const isIngestPath = (path: string) => ingestPaths.has(normalPath(path));

if (bodyParser[PATCHED] !== true) {
  for (const kind of ['json', 'text', 'urlencoded', 'raw'] as const) {
    const makeParser = bodyParser[kind];
    bodyParser[kind] = (options) => {
      const parse = makeParser(options);
      return (req, res, next) => {
        if (isIngestPath(req.path)) {
          next();
          return;
        }
        parse(req, res, (error) => {
          if (error !== undefined && error !== null) req.bodyParserError = error;
          next();
        });
      };
    };
  }
  bodyParser[PATCHED] = true;
}
