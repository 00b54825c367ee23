/** Adapts functions-framework's Express request and response to the framework-free ingest. */
import type { ServerResponse } from 'node:http';
import type { HttpFunction } from '@google-cloud/functions-framework';
import { BodyBudget, type BodyRead, readBody } from '../../shared/body.ts';
import {
  bodyWorthKeeping,
  createIngest,
  type IngestDeps,
  type IngestRequest,
  logOutcome,
  type Outcome,
  normalPath,
  readsBody,
  replyFor,
} from '../../shared/pipeline/ingest.ts';
import { DEFAULT_MAX_BODY_BYTES_IN_FLIGHT } from '../../shared/pipeline/config.ts';
import type { DeliveryJournal } from '../../shared/pipeline/journal.ts';
import type { FrameworkRequest } from './raw-body.ts';
import './raw-body.ts';

function headersOf(req: FrameworkRequest): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/**
 * The request as ingest sees it, its body read here with the cap enforced while reading and its
 * bytes counted against the process's budget until `res` closes.
 */
function requestOf(
  req: FrameworkRequest,
  res: ServerResponse,
  deps: IngestDeps,
  budget: BodyBudget,
  done: (request: IngestRequest) => void,
): void {
  const headers = headersOf(req);
  const request = (body: BodyRead): IngestRequest => ({
    method: req.method,
    path: req.path,
    headers,
    rawBody: body.bytes,
    ...(body.problem === undefined ? {} : { unreadableBody: body.problem }),
    traceContext: req.get('x-cloud-trace-context'),
  });
  // Any other request is a 404, a 405 or the health check: Node discards its body, never read.
  if (!readsBody(req.method, req.path)) {
    done(request({}));
    return;
  }
  const keep = bodyWorthKeeping(deps.config, req.path, headers);
  readBody(req, headers, { maxBytes: deps.config.maxBodyBytes, keep, budget }, (body) => {
    if (body.held !== undefined) {
      const held = body.held;
      res.once('close', () => {
        budget.give(held);
      });
    }
    done(request(body));
  });
}

/** What a local run adds to the front door: a journal of deliveries, and a page at `GET /`. */
interface LocalExtras {
  journal?: DeliveryJournal;
  home?: HttpFunction;
}

/** The HTTP function: read the request, call shared/, write the status. */
export function ingestHandler(deps: IngestDeps, local: LocalExtras = {}): HttpFunction {
  const ingest = createIngest(deps);
  const { maxBodyBytes, maxBodyBytesInFlight = DEFAULT_MAX_BODY_BYTES_IN_FLIGHT } = deps.config;
  const budget = new BodyBudget(Math.max(maxBodyBytesInFlight, maxBodyBytes));
  const { journal, home } = local;
  return (req: FrameworkRequest, res) => {
    if (home !== undefined && req.path === '/' && (req.method === 'GET' || req.method === 'HEAD')) {
      void home(req, res);
      return;
    }
    // functions-framework runs each request inside a node:domain only to turn a stray exception
    // into a 500; every failure here is caught below. Inside a domain each promise pays for the
    // domain's bookkeeping: leaving it is worth about 9% of throughput (`npm run bench`).
    (process as { domain?: { exit(): void } }).domain?.exit();
    const path = req.path;
    const fail = (error: unknown) => {
      deps.logger.error('ingest failed', { path, error: String(error) });
      if (res.headersSent) res.destroy();
      else res.status(500).json({ error: 'internal', message: 'internal error' });
    };
    const handle = (request: IngestRequest) => {
      const answer = (outcome: Outcome) => {
        const reply = replyFor(outcome);
        logOutcome(deps.logger, request, outcome, reply.status, deps.config.projectId);
        journal?.answered(normalPath(request.path), outcome, reply.status, new Date().toISOString());
        // A body refused for its size may still be arriving: end the connection after the answer.
        const connection = outcome.reason === 'payload_too_large' ? { connection: 'close' } : {};
        // Written as it is, not through Express's res.json, which also hashes every body for an ETag
        // no webhook sender sends back.
        const text = JSON.stringify(reply.body);
        res
          .writeHead(reply.status, {
            ...reply.headers,
            ...connection,
            'content-type': 'application/json; charset=utf-8',
            'content-length': Buffer.byteLength(text),
          })
          .end(text);
      };
      const answerOrFail = (outcome: Outcome) => {
        try {
          answer(outcome);
        } catch (error) {
          fail(error);
        }
      };
      try {
        const outcome = ingest(request);
        if (outcome instanceof Promise) outcome.then(answerOrFail, fail);
        else answerOrFail(outcome);
      } catch (error) {
        fail(error);
      }
    };
    // Outside the domain a throw would reach Express, not this catch: every step is guarded here.
    try {
      requestOf(req, res, deps, budget, handle);
    } catch (error) {
      fail(error);
    }
  };
}
