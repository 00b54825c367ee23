import { CanonicalEvent, pushId, shippedId } from '../events/model.ts';
import type { Settings } from '../events/settings.ts';
import { UnusablePayload } from './normalize.ts';
import { normalizerOf } from './registry.ts';

/** Firestore's limits: a document id of at most 1,500 bytes, a document of at most 1 MiB. */
const MAX_ID_BYTES = 1500;
const MAX_EVENT_BYTES = 900 * 1024;

type Normalized = { ok: true; events: CanonicalEvent[] } | { ok: false; field: string; problem: string };

/** The fields that become ids, tags or paths: no name of a repository, ref, service or environment has control characters. */
const NAME_FIELDS = new Set([
  'id',
  'externalId',
  'service',
  'environment',
  'repository',
  'branch',
  'sha',
  'commitSha',
  'mergeCommitSha',
  'team',
  'deployId',
]);
// eslint-disable-next-line no-control-regex -- control characters are exactly what it finds
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * The first string of an event that no store, tag or path can hold as it is, and why: one that is
 * not well-formed Unicode (a lone UTF-16 surrogate, which a JSON `\ud800` escape can carry) has no
 * UTF-8 form, so as an id it would throw (`encodeURIComponent`) or silently become U+FFFD, making
 * two ids one; a control character in a name. Ids are derived from the other fields, so they are
 * looked at last and the field named is the one the sender wrote.
 */
function unstorableString(value: unknown, path: string, key = ''): { field: string; problem: string } | undefined {
  if (typeof value === 'string') {
    if (!value.isWellFormed()) return { field: path, problem: 'is not valid Unicode (a lone UTF-16 surrogate)' };
    if (NAME_FIELDS.has(key) && CONTROL.test(value)) return { field: path, problem: 'holds a control character' };
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  const entries = Object.entries(value).sort(([a], [b]) => Number(a === 'id') - Number(b === 'id'));
  for (const [childKey, child] of entries) {
    const found = unstorableString(child, `${path}.${childKey}`, Array.isArray(value) ? key : childKey);
    if (found !== undefined) return found;
  }
  return undefined;
}

function storableProblem(event: CanonicalEvent): { field: string; problem: string } | undefined {
  const unstorable = unstorableString(event, event.kind);
  if (unstorable !== undefined) return unstorable;
  const ids: Array<[string, string]> = [[`${event.kind}.id`, event.id]];
  if (event.kind === 'push') ids.push(['push.id', pushId(event.repository, event.branch, event.before, event.after)]);
  if (event.kind === 'deploy' && event.repository !== undefined && event.commitSha !== undefined)
    ids.push(['deploy.commitSha', shippedId(event.service, event.repository, event.commitSha)]);
  for (const [field, id] of ids) {
    // The stores keep ids URI-encoded (Firestore ids may not hold `/`).
    if (Buffer.byteLength(encodeURIComponent(id)) > MAX_ID_BYTES)
      return { field, problem: `makes an id of more than ${MAX_ID_BYTES} bytes` };
  }
  if (Buffer.byteLength(JSON.stringify(event)) > MAX_EVENT_BYTES)
    return { field: event.kind, problem: `is more than ${MAX_EVENT_BYTES} bytes once stored` };
  return undefined;
}

/**
 * A payload as `process` will read it: normalised, each canonical event checked against its schema
 * and against what the stores can hold. Ingest runs it before its 202, so what it accepts `process`
 * can store; a failure names the field (the payload's, or the canonical event's).
 */
export function normalizeForStore(
  source: string,
  body: unknown,
  eventType: string,
  context: { settings: Settings; receivedAt: string },
): Normalized {
  const normalize = normalizerOf(source);
  if (normalize === undefined) return { ok: false, field: 'source', problem: `unknown source "${source}"` };
  let normalized: CanonicalEvent[];
  try {
    normalized = normalize(body, eventType, context);
  } catch (error) {
    if (error instanceof UnusablePayload) {
      const [field = '', ...rest] = error.message.split(': ');
      return { ok: false, field: field === '' ? '(body)' : field, problem: rest.join(': ') || 'invalid' };
    }
    if (error instanceof RangeError) return { ok: false, field: '(body)', problem: error.message };
    throw error;
  }
  const events: CanonicalEvent[] = [];
  for (const candidate of normalized) {
    const parsed = CanonicalEvent.safeParse(candidate);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = [candidate.kind, ...(issue?.path.map(String) ?? [])].join('.');
      return { ok: false, field, problem: issue?.message ?? 'invalid' };
    }
    events.push(parsed.data);
  }
  for (const event of events) {
    const problem = storableProblem(event);
    if (problem !== undefined) return { ok: false, ...problem };
  }
  return { ok: true, events };
}
