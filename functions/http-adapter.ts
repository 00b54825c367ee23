/** Adapts functions-framework's Express request and response to the framework-free ingest. */
import type { HttpFunction } from '@google-cloud/functions-framework';
import { createIngest, type IngestDeps, type IngestRequest, logOutcome, replyFor } from '../shared/ingest.ts';
import type { FrameworkRequest } from './raw-body.ts';
import './raw-body.ts';

function headersOf(req: FrameworkRequest): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

function requestOf(req: FrameworkRequest): IngestRequest {
  const error = req.bodyParserError;
  const parsedByFramework =
    error === undefined &&
    req.is('application/json') !== false &&
    typeof req.body === 'object' &&
    req.body !== null &&
    !Buffer.isBuffer(req.body);
  return {
    method: req.method,
    path: req.path,
    headers: headersOf(req),
    rawBody: req.rawBody,
    parsedBody: parsedByFramework ? (req.body as unknown) : undefined,
    unreadableBody:
      error === undefined
        ? undefined
        : error.type === 'entity.too.large'
          ? 'too_large'
          : error.type === 'encoding.unsupported'
            ? 'unsupported_encoding'
            : error.type === 'entity.parse.failed' || error.type === 'charset.unsupported'
              ? undefined // the raw bytes are there; ingest answers in its own order
              : 'unreadable',
    traceContext: req.get('x-cloud-trace-context'),
  };
}

/** The HTTP function: read the request, call shared/, write the status. */
export function ingestHandler(deps: IngestDeps): HttpFunction {
  const ingest = createIngest(deps);
  return (req: FrameworkRequest, res) => {
    // functions-framework runs each request inside a node:domain only to turn a stray exception
    // into a 500; every failure here is caught below. Inside a domain each promise pays for the
    // domain's bookkeeping: leaving it is worth about 9% of throughput (`npm run bench`).
    (process as { domain?: { exit(): void } }).domain?.exit();
    const request = requestOf(req);
    ingest(request).then(
      (outcome) => {
        const reply = replyFor(outcome);
        logOutcome(deps.logger, request, outcome, reply.status, deps.config.projectId);
        res.status(reply.status).set(reply.headers).json(reply.body);
      },
      (error: unknown) => {
        deps.logger.error('ingest failed', { path: request.path, error: String(error) });
        res.status(500).json({ error: 'internal', message: 'internal error' });
      },
    );
  };
}
