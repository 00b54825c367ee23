import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local server that answers like GitHub's REST API for the routes a test gives it: JSON bodies,
 * `Link` headers for pages (`per_page`, `page` or `cursor`), rate-limit headers, and faults queued
 * per path (a 500 then success, a 403). It records every request.
 */
export type Handler = (request: {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
}) => { status?: number; body: unknown; headers?: Record<string, string> } | undefined;

export class FakeGithub {
  readonly requests: Array<{ method: string; path: string; query: string; authorization?: string }> = [];
  private readonly routes: Array<{ method: string; pattern: RegExp; handler: Handler }> = [];
  private readonly faults: Array<{
    pattern: RegExp;
    status: number;
    headers?: Record<string, string>;
    body?: unknown;
  }> = [];
  private readonly server: Server;
  url = '';

  constructor() {
    this.server = createServer((req, res) => void this.answer(req, res));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server.close(() => {
        resolve();
      }),
    );
  }

  on(method: string, pattern: RegExp, handler: Handler): this {
    this.routes.push({ method, pattern, handler });
    return this;
  }

  /** The next request matching `pattern` gets this status instead (once per call). */
  fail(
    pattern: RegExp,
    status: number,
    headers: Record<string, string> = {},
    body: unknown = { message: 'fault' },
  ): void {
    this.faults.push({ pattern, status, headers, body });
  }

  /** A list as GitHub pages it: `per_page` and `page`, with a `Link` header to the next page. */
  paged(
    items: unknown[],
    query: URLSearchParams,
    path: string,
    maxPerPage = 100,
  ): { body: unknown; headers: Record<string, string> } {
    const perPage = Math.min(Number(query.get('per_page') ?? 30), maxPerPage);
    const page = Number(query.get('page') ?? 1);
    const slice = items.slice((page - 1) * perPage, page * perPage);
    const headers: Record<string, string> = {};
    if (page * perPage < items.length) {
      const next = new URLSearchParams(query);
      next.set('page', String(page + 1));
      headers.link = `<${this.url}${path}?${next.toString()}>; rel="next"`;
    }
    return { body: slice, headers };
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://x');
    const method = req.method ?? 'GET';
    this.requests.push({
      method,
      path: url.pathname,
      query: url.search,
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'x-ratelimit-limit': '5000',
        'x-ratelimit-remaining': '4999',
        'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600),
        ...headers,
      });
      res.end(JSON.stringify(body));
    };
    const fault = this.faults.findIndex((f) => f.pattern.test(url.pathname));
    if (fault >= 0) {
      const [f] = this.faults.splice(fault, 1);
      json(f?.status ?? 500, f?.body, f?.headers);
      return;
    }
    const body = chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString()) as unknown) : undefined;
    for (const route of this.routes) {
      if (route.method !== method || !route.pattern.test(url.pathname)) continue;
      const answer = route.handler({ method, path: url.pathname, query: url.searchParams, body });
      if (answer === undefined) continue;
      json(answer.status ?? 200, answer.body, answer.headers);
      return;
    }
    json(404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
  }
}
