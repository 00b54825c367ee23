import { createRequire } from 'node:module';
import type { Request } from 'express';

/**
 * functions-framework parses every body with body-parser before our handler runs, and answers
 * a parse failure itself, with an HTML page, a stack trace in the log and before any signature
 * check. Webhook senders must get JSON answers in the contract's order (an unsigned truncated
 * body is a 401, a signed one a 400), so the parsers' errors are kept on the request for the
 * handler to answer instead. The raw bytes stay in `req.rawBody`, where the framework puts them.
 * This reaches into the framework's own copy of body-parser, so it is pinned by a test
 * (test/http/ingest.test.ts, "truncated JSON") that fails if the framework changes how it parses.
 */
export interface FrameworkRequest extends Request {
  rawBody?: Buffer;
  bodyParserError?: { type?: string; status?: number };
}

type Middleware = (req: FrameworkRequest, res: unknown, next: (error?: unknown) => void) => void;
type ParserFactory = (options?: unknown) => Middleware;

const PATCHED = Symbol.for('devstats.bodyParserErrorsKept');
const frameworkRequire = createRequire(import.meta.resolve('@google-cloud/functions-framework'));
const bodyParser = frameworkRequire('body-parser') as Record<'json' | 'text' | 'urlencoded' | 'raw', ParserFactory> & {
  [PATCHED]?: true;
};

if (bodyParser[PATCHED] !== true) {
  for (const kind of ['json', 'text', 'urlencoded', 'raw'] as const) {
    const makeParser = bodyParser[kind];
    bodyParser[kind] = (options) => {
      const parse = makeParser(options);
      return (req, res, next) => {
        parse(req, res, (error) => {
          if (error !== undefined && error !== null) req.bodyParserError = error;
          next();
        });
      };
    };
  }
  bodyParser[PATCHED] = true;
}
