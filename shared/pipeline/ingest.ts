import type { Headers } from '../sources/auth.ts';
import {
  type Bus,
  MAX_MESSAGE_DATA_BYTES,
  type Packed,
  packForTopic,
  PublishError,
  type RawAttributes,
} from '../bus/bus.ts';
import { readFileSync } from 'node:fs';
import { type Config, hasSecret, secretList } from './config.ts';
import type { LogFields, Logger } from '../log.ts';
import { jsonShapeProblem } from '../body.ts';
import { parseSettings, type Settings } from '../events/settings.ts';
import type { Admission } from '../sources/admission.ts';
import { SOURCE_PATHS, sourceAtPath, type WebhookSource } from '../sources/registry.ts';
import type { WebhookSourceShape } from '../sources/source.ts';
import { normalizeForStore } from '../sources/index.ts';

/** One HTTP request as `ingest` sees it, whatever server carried it. */
export interface IngestRequest {
  method: string;
  path: string;
  /** Lower-case names. */
  headers: Headers;
  /** The exact bytes received (decoded); undefined when there was no body, or it was not kept or readable. */
  rawBody: Buffer | undefined;
  /** Why the server could not read the body, when it could not. */
  unreadableBody?: 'too_large' | 'unsupported_encoding' | 'unreadable' | 'busy';
  /** `X-Cloud-Trace-Context`, for log correlation. */
  traceContext?: string;
}

/** Expected ways a delivery is refused: values, mapped to statuses in one table below. */
type Rejection =
  | { reason: 'unknown_path'; path: string }
  | { reason: 'method_not_allowed'; allow: string }
  | { reason: 'payload_too_large'; limit: number }
  | { reason: 'unsupported_media_type'; detail: string }
  | { reason: 'unauthorized'; detail: string }
  | { reason: 'invalid_payload'; field: string; detail: string };

export type Outcome =
  | Rejection
  | { reason: 'healthy' }
  | { reason: 'answered'; source: WebhookSource; eventType: string; message: string }
  | {
      reason: 'accepted';
      source: WebhookSource;
      eventType: string;
      deliveryId: string;
      messageId: string;
      warnings?: readonly string[];
    }
  | { reason: 'unavailable'; source: WebhookSource; detail: string };

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

const RETRY_AFTER_SECONDS = '30';

/** The one place that turns outcomes into what the sender sees. Every body is JSON. */
export function replyFor(outcome: Outcome): Reply {
  const error = (status: number, message: string, extra: Record<string, unknown> = {}, headers = {}): Reply => ({
    status,
    headers,
    body: { error: outcome.reason, message, ...extra },
  });
  switch (outcome.reason) {
    case 'unknown_path':
      return error(
        404,
        `no source at ${outcome.path}; use ${SOURCE_PATHS.slice(0, -1).join(', ')} or ${SOURCE_PATHS.at(-1)}`,
      );
    case 'method_not_allowed':
      return error(405, `use ${outcome.allow}`, {}, { allow: outcome.allow });
    case 'payload_too_large':
      return error(413, `body is over ${outcome.limit} bytes`);
    case 'unsupported_media_type':
      return error(415, outcome.detail);
    case 'unauthorized':
      return error(401, outcome.detail);
    case 'invalid_payload':
      return error(400, `${outcome.field}: ${outcome.detail}`, { field: outcome.field });
    case 'unavailable':
      return error(503, 'the delivery could not be handed on; retry later', {}, { 'retry-after': RETRY_AFTER_SECONDS });
    case 'healthy':
      return { status: 200, headers: {}, body: { status: 'ok' } };
    case 'answered':
      return {
        status: 200,
        headers: {},
        body: { status: 'ok', eventType: outcome.eventType, message: outcome.message },
      };
    case 'accepted':
      return {
        status: 202,
        headers: {},
        body: {
          status: 'accepted',
          deliveryId: outcome.deliveryId,
          ...(outcome.warnings !== undefined ? { warnings: outcome.warnings } : {}),
        },
      };
  }
}

/** A source's route: its definition in the registry. */
type Route = WebhookSourceShape & { name: WebhookSource };

/** The source a path belongs to, if any: for a refused delivery, which carries none. */
export const sourceOfPath = (path: string): WebhookSource | undefined => sourceAtPath(normalPath(path))?.name;

/**
 * Whether ingest reads a request's body at all: only a POST to a source (`readBody` caps it while
 * reading). Any other request is answered from its method and path, its body never read.
 */
export const readsBody = (method: string, path: string): boolean =>
  method === 'POST' && sourceAtPath(normalPath(path)) !== undefined;

export const normalPath = (path: string) => (path.length > 1 ? path.replace(/\/+$/, '') : path);

/**
 * Whether a request's body is worth keeping while it is read: it goes to a source, and carries
 * that source's credentials (or the source is open under DEVSTATS_INSECURE_DEV). Any other
 * request will be refused whatever its body holds, so its bytes are only counted.
 */
export function bodyWorthKeeping(
  config: Pick<Config, 'secrets' | 'insecureDev'> & Partial<Pick<Config, 'secretFiles'>>,
  path: string,
  headers: Headers,
): boolean {
  const route = sourceAtPath(normalPath(path));
  if (route === undefined) return false;
  if (!hasSecret(config, route.name)) return config.insecureDev;
  const credential = headers[route.credential];
  return credential !== undefined && credential !== '';
}

/** No webhook nests this deep or carries this many values; a body that does is refused before parsing. */
const JSON_LIMITS = { maxDepth: 64, maxValues: 2_000_000 };

/** `application/json` or `application/<anything>+json`, in UTF-8 (RFC 8259 allows no other charset). */
function mediaTypeProblem(contentType: string | undefined): string | undefined {
  if (contentType === undefined || contentType === '') return 'Content-Type must be application/json';
  const [type = '', ...parameters] = contentType.split(';').map((part) => part.trim().toLowerCase());
  if (type !== 'application/json' && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) {
    return `Content-Type must be application/json, not ${type}`;
  }
  const charset = parameters
    .find((p) => p.startsWith('charset='))
    ?.slice('charset='.length)
    .replace(/"/g, '');
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    return `charset must be utf-8, not ${charset}`;
  }
  return undefined;
}

function parseJson(rawBody: Buffer): { ok: true; value: unknown } | { ok: false; detail: string } {
  if (rawBody.length === 0) return { ok: false, detail: 'body is empty' };
  const shape = jsonShapeProblem(rawBody, JSON_LIMITS);
  if (shape !== undefined) return { ok: false, detail: `JSON ${shape}` };
  try {
    return { ok: true, value: JSON.parse(rawBody.toString('utf8')) as unknown };
  } catch (error) {
    // The engine's message quotes the body: the answer and the log say where, never what.
    const position = /position (\d+)/.exec((error as Error).message)?.[1];
    return { ok: false, detail: `not valid JSON${position === undefined ? '' : ` (at byte ${position})`}` };
  }
}

export interface IngestDeps {
  config: Pick<Config, 'maxBodyBytes' | 'secrets' | 'insecureDev' | 'rawTopic' | 'projectId'> &
    Partial<Pick<Config, 'secretFiles' | 'secretTtlMs' | 'maxBodyBytesInFlight'>>;
  /** The configuration file's settings, which the normalisers read (defaults without one). */
  settings?: Settings;
  bus: Bus;
  logger: Logger;
  now?: () => Date;
}

/**
 * Each source's accepted secrets: from its file when one is configured (re-read every
 * `secretTtlMs`, so a rotation reaches a warm instance; a file that cannot be read keeps the last
 * value read), else from its variable.
 */
function secretReader(
  config: Pick<Config, 'secrets'> & Partial<Pick<Config, 'secretFiles' | 'secretTtlMs'>>,
  now: () => Date,
): (source: WebhookSource) => readonly string[] {
  const read = new Map<WebhookSource, { secrets: readonly string[]; at: number }>();
  const ttl = config.secretTtlMs ?? 30_000;
  return (source) => {
    const file = config.secretFiles?.[source];
    if (file === undefined) return config.secrets[source];
    const known = read.get(source);
    const at = now().getTime();
    if (known !== undefined && at - known.at < ttl) return known.secrets;
    let secrets = known?.secrets ?? [];
    try {
      secrets = secretList(readFileSync(file, 'utf8'));
    } catch {
      // Unreadable for now (a volume being remounted): the last value read stands.
    }
    read.set(source, { secrets, at });
    return secrets;
  };
}

/**
 * The front door: routes, bounds, authenticates and validates a delivery, then publishes its
 * raw bytes. Checks run in the contract's order (DESIGN.md, "Ingest contract"), so a sender
 * always learns the first thing wrong with its request.
 *
 * A refusal is answered synchronously; only handing a delivery on returns a promise. Under
 * functions-framework every promise pays for the async hooks of its domain and its
 * AsyncLocalStorage: this path makes two per delivery, where `async` all through made ten.
 */
export function createIngest(deps: IngestDeps): (request: IngestRequest) => Outcome | Promise<Outcome> {
  const now = deps.now ?? (() => new Date());
  const { config, bus } = deps;
  const settings = deps.settings ?? parseSettings({});
  const secretsOf = secretReader(config, now);

  /** Publishes an admitted delivery: accepted once the bus holds it, unavailable if it cannot take it. */
  function handOn(
    route: Route,
    admission: Extract<Admission, { kind: 'publish' }>,
    receivedAt: string,
    packed: Packed,
  ): Outcome | Promise<Outcome> {
    if (packed.data.length > MAX_MESSAGE_DATA_BYTES) {
      // Within the cap, but more than Pub/Sub takes even compressed: it could never be handed on.
      return { reason: 'payload_too_large', limit: config.maxBodyBytes };
    }
    const attributes: RawAttributes = {
      source: route.name,
      deliveryId: admission.deliveryId,
      eventType: admission.eventType,
      receivedAt,
      ...packed.attributes,
    };
    return bus.publish(config.rawTopic, { data: packed.data, attributes }).then(
      (messageId): Outcome => ({
        reason: 'accepted',
        source: route.name,
        eventType: admission.eventType,
        deliveryId: admission.deliveryId,
        messageId,
        ...(admission.warnings !== undefined ? { warnings: admission.warnings } : {}),
      }),
      (error: unknown): Outcome => {
        if (!(error instanceof PublishError)) throw error;
        return { reason: 'unavailable', source: route.name, detail: error.message };
      },
    );
  }

  return function ingest(request) {
    const path = normalPath(request.path);
    if (path === '/healthz') {
      return request.method === 'GET' || request.method === 'HEAD'
        ? { reason: 'healthy' }
        : { reason: 'method_not_allowed', allow: 'GET' };
    }
    const route = sourceAtPath(path);
    if (route === undefined) return { reason: 'unknown_path', path };
    if (request.method !== 'POST') return { reason: 'method_not_allowed', allow: 'POST' };

    const rawBody = request.rawBody ?? Buffer.alloc(0);
    if (request.unreadableBody === 'too_large' || rawBody.length > config.maxBodyBytes) {
      return { reason: 'payload_too_large', limit: config.maxBodyBytes };
    }
    if (request.unreadableBody === 'busy') {
      return { reason: 'unavailable', source: route.name, detail: 'too many request bodies in memory at once' };
    }
    const mediaProblem = mediaTypeProblem(request.headers['content-type']);
    if (mediaProblem !== undefined) return { reason: 'unsupported_media_type', detail: mediaProblem };
    if (request.unreadableBody === 'unsupported_encoding') {
      return { reason: 'unsupported_media_type', detail: 'Content-Encoding is not supported' };
    }

    const secrets = secretsOf(route.name);
    if (secrets.length > 0) {
      const problem = route.authenticate(request.headers, rawBody, secrets);
      if (problem !== undefined) return { reason: 'unauthorized', detail: problem };
    } else if (!config.insecureDev) {
      return { reason: 'unauthorized', detail: `${route.name} deliveries are refused: its secret is not configured` };
    }

    if (request.unreadableBody === 'unreadable') {
      return { reason: 'invalid_payload', field: '(body)', detail: 'the body could not be read' };
    }
    const json = parseJson(rawBody);
    if (!json.ok) return { reason: 'invalid_payload', field: '(body)', detail: json.detail };
    if (typeof json.value !== 'object' || json.value === null || Array.isArray(json.value)) {
      return { reason: 'invalid_payload', field: '(body)', detail: 'must be a JSON object' };
    }

    const admission = route.admit(request.headers, json.value);
    switch (admission.kind) {
      case 'invalid':
        return { reason: 'invalid_payload', field: admission.field, detail: admission.problem };
      case 'answer':
        return { reason: 'answered', source: route.name, eventType: admission.eventType, message: admission.message };
      case 'publish':
        break;
    }
    // A 202 is a promise: what process will make of it is checked now, so nothing accepted here
    // fails there on every delivery.
    const receivedAt = now().toISOString();
    const normalized = normalizeForStore(route.name, json.value, admission.eventType, { settings, receivedAt });
    if (!normalized.ok) return { reason: 'invalid_payload', field: normalized.field, detail: normalized.problem };
    if (normalized.events.length === 0) {
      return { reason: 'answered', source: route.name, eventType: admission.eventType, message: 'nothing to count' };
    }

    const packed = packForTopic(rawBody);
    return packed instanceof Promise
      ? packed.then((gzipped) => handOn(route, admission, receivedAt, gzipped))
      : handOn(route, admission, receivedAt, packed);
  };
}

/** The log line for an outcome: flat fields, never the payload or a secret. */
export function logOutcome(
  logger: Logger,
  request: IngestRequest,
  outcome: Outcome,
  status: number,
  projectId?: string,
): void {
  const fields: LogFields = { status, reason: outcome.reason, path: request.path };
  if ('source' in outcome) fields.source = outcome.source;
  if ('eventType' in outcome) fields.eventType = outcome.eventType;
  if ('deliveryId' in outcome) fields.deliveryId = outcome.deliveryId;
  if ('detail' in outcome) fields.detail = outcome.detail;
  if ('field' in outcome) fields.field = outcome.field;
  if ('warnings' in outcome && outcome.warnings !== undefined) fields.warnings = outcome.warnings.join('; ');
  const traceId = request.traceContext?.split('/')[0];
  if (traceId !== undefined && traceId !== '' && projectId !== undefined) {
    fields['logging.googleapis.com/trace'] = `projects/${projectId}/traces/${traceId}`;
  }
  if (outcome.reason === 'healthy') return;
  if (status >= 500) logger.error('delivery not handed on', fields);
  else if (status >= 400) logger.warn('delivery refused', fields);
  else logger.info(outcome.reason === 'accepted' ? 'delivery accepted' : 'delivery answered', fields);
}
