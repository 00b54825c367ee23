import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync, inflateSync } from 'node:zlib';
import type { Logger } from '../../shared/log.ts';
import { createDatadogSink } from '../../shared/export/datadog-sink.ts';
import { type DatadogSink } from '../../shared/export/sink.ts';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

type Fault = { kind: 'status'; status: number; headers?: Record<string, string> } | { kind: 'hang' };

/** What Datadog's intake answers for each endpoint the sink uses (shapes from the API reference). */
const ANSWERS: Record<string, [number, unknown]> = {
  '/api/v1/series': [202, { status: 'ok' }],
  '/api/v1/distribution_points': [202, { status: 'ok' }],
  '/api/v1/events': [202, { status: 'ok', event: { id: 1, title: 'x' } }],
  '/api/v2/dora/deployment': [202, { data: { id: 'x', type: 'dora_deployment' } }],
  '/api/v2/dora/failure': [202, { data: { id: 'x', type: 'dora_failure' } }],
};

/**
 * A local server that answers like Datadog's API and records every request it accepted, with its
 * body decompressed and parsed. Faults queued with `fail` are answered first, one per request.
 */
export class FakeDatadog {
  readonly accepted: ReceivedRequest[] = [];
  /** Every request that reached the server, faults included. */
  attempts = 0;
  private readonly faults: Fault[] = [];
  private readonly rules: Array<{ match: (path: string, body: string) => boolean; fault: Fault }> = [];
  private readonly server: Server;
  private readonly hanging = new Set<ServerResponse>();
  /** Dashboards held, as the dashboards API keeps them. */
  readonly dashboards = new Map<string, Record<string, unknown>>();
  url = '';
  /** When set, the only API key `GET /api/v1/validate` accepts (Datadog answers others 403). */
  validKey: string | undefined;
  /** Called with each request accepted at an intake endpoint, as it arrives (benchmarks time them). */
  onAccepted: ((request: ReceivedRequest) => void) | undefined;

  constructor() {
    this.server = createServer((req, res) => void this.answer(req, res));
  }

  /** The real Datadog sink (the client, its retries and timeouts), pointed at this server. */
  sink(logger: Logger, options: { timeoutMs?: number; retries?: number; backoffMs?: number } = {}): DatadogSink {
    return createDatadogSink(
      {
        apiKey: 'test-key',
        appKey: undefined,
        site: 'datadoghq.com',
        apiUrl: this.url,
        timeoutMs: options.timeoutMs ?? 2000,
        retries: options.retries ?? 1,
        backoffMs: options.backoffMs ?? 5,
        dataDir: '/nonexistent',
      },
      logger,
    );
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server.close(() => {
        resolve();
      }),
    );
  }

  fail(times: number, fault: Fault): void {
    for (let i = 0; i < times; i++) this.faults.push(fault);
  }

  /** Answers every request that `match` picks (by path and decoded body) with `fault`, until cleared. */
  refuse(match: (path: string, body: string) => boolean, fault: Fault): void {
    this.rules.push({ match, fault });
  }

  clearRefusals(): void {
    this.rules.length = 0;
  }

  /** The bodies accepted at one endpoint. */
  bodies(path: string): unknown[] {
    return this.accepted.filter((r) => r.path === path).map((r) => r.body);
  }

  private dashboardsApi(req: IncomingMessage, res: ServerResponse, path: string, raw: Buffer): void {
    const json = (status: number, body: unknown) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.headers['dd-api-key'] === undefined || req.headers['dd-application-key'] === undefined) {
      json(403, { errors: ['Forbidden'] });
      return;
    }
    const id = path.split('/')[4];
    const body = raw.length > 0 ? (JSON.parse(raw.toString('utf8')) as Record<string, unknown>) : {};
    this.accepted.push({ method: req.method ?? '', path, headers: req.headers, body });
    if (req.method === 'GET' && id === undefined) {
      json(200, {
        dashboards: [...this.dashboards].map(([dashboardId, d]) => ({
          id: dashboardId,
          title: d.title,
          layout_type: d.layout_type,
        })),
      });
    } else if (req.method === 'POST' && id === undefined) {
      const newId = `abc-${String(this.dashboards.size + 1).padStart(3, '0')}-xyz`;
      this.dashboards.set(newId, body);
      json(200, { ...body, id: newId, url: `/dashboard/${newId}/devstats` });
    } else if (req.method === 'PUT' && id !== undefined && this.dashboards.has(id)) {
      this.dashboards.set(id, body);
      json(200, { ...body, id, url: `/dashboard/${id}/devstats` });
    } else {
      json(404, { errors: ['Dashboard not found'] });
    }
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    this.attempts++;
    const requestPath = (req.url ?? '').split('?')[0] ?? '';
    let decoded = Buffer.concat(chunks);
    try {
      if (req.headers['content-encoding'] === 'gzip') decoded = gunzipSync(decoded);
      if (req.headers['content-encoding'] === 'deflate') decoded = inflateSync(decoded);
    } catch {
      // answered below as it is
    }
    const fault = this.faults.shift() ?? this.rules.find((r) => r.match(requestPath, decoded.toString('utf8')))?.fault;
    if (fault?.kind === 'hang') {
      this.hanging.add(res);
      return;
    }
    if (fault?.kind === 'status') {
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers }).end('{"errors":["fault"]}');
      return;
    }
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (path.startsWith('/api/v1/dashboard')) {
      this.dashboardsApi(req, res, path, Buffer.concat(chunks));
      return;
    }
    if (path === '/api/v1/validate') {
      const key = req.headers['dd-api-key'];
      const valid = key !== undefined && (this.validKey === undefined || key === this.validKey);
      this.accepted.push({ method: req.method ?? '', path, headers: req.headers, body: undefined });
      res
        .writeHead(valid ? 200 : 403, { 'content-type': 'application/json' })
        .end(valid ? '{"valid":true}' : '{"errors":["Forbidden"]}');
      return;
    }
    // DELETE /api/v2/dora/failure/{id}: 204 when held, 404 when not (this server holds every failure accepted).
    if (req.method === 'DELETE' && path.startsWith('/api/v2/dora/failure/')) {
      const id = decodeURIComponent(path.slice('/api/v2/dora/failure/'.length));
      const held = this.bodies('/api/v2/dora/failure').some(
        (b) => (b as { data?: { attributes?: { id?: string } } }).data?.attributes?.id === id,
      );
      this.accepted.push({ method: 'DELETE', path, headers: req.headers, body: undefined });
      res
        .writeHead(held ? 204 : 404, { 'content-type': 'application/json' })
        .end(held ? '' : '{"errors":["Not found"]}');
      return;
    }
    const answer = ANSWERS[path];
    if (req.headers['dd-api-key'] === undefined) {
      res.writeHead(403, { 'content-type': 'application/json' }).end('{"errors":["Forbidden"]}');
      return;
    }
    if (answer === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":["Not found"]}');
      return;
    }
    let raw = Buffer.concat(chunks);
    if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
    if (req.headers['content-encoding'] === 'deflate') raw = inflateSync(raw);
    const received: ReceivedRequest = {
      method: req.method ?? '',
      path,
      headers: req.headers,
      body: JSON.parse(raw.toString('utf8')) as unknown,
    };
    this.accepted.push(received);
    this.onAccepted?.(received);
    res.writeHead(answer[0], { 'content-type': 'application/json' }).end(JSON.stringify(answer[1]));
  }
}
