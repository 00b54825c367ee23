import { circleci } from './circleci.ts';
import { cloudbuild } from './cloudbuild.ts';
import { deployments } from './deployments.ts';
import { github, githubHistory } from './github.ts';
import { datadog, opsgenie, pagerduty } from './incidents.ts';
import type { Normalizer } from './normalize.ts';
import type { TopicSourceShape, WebhookSourceShape } from './source.ts';
import { spinnaker } from './spinnaker.ts';
import { terraform } from './terraform.ts';

/**
 * Every source DevStats reads, once. Ingest routes and authenticates by it, `process` normalises
 * by it, the configuration reads each webhook source's secret variable from it, and doctor, the
 * live view and ingest's 404 list it: adding a source is its file and its name here.
 */
export const WEBHOOK_SOURCES = [
  github,
  spinnaker,
  terraform,
  circleci,
  deployments,
  pagerduty,
  opsgenie,
  datadog,
] as const satisfies readonly WebhookSourceShape[];

/** Sources that arrive only on Pub/Sub topics, or from backfill. */
export const TOPIC_SOURCES = [cloudbuild, githubHistory] as const satisfies readonly TopicSourceShape[];

type WebhookSourceOf = (typeof WEBHOOK_SOURCES)[number];
export type WebhookSource = WebhookSourceOf['name'];

/** Each webhook source's secret variable. */
export const SECRET_VARIABLES = Object.fromEntries(WEBHOOK_SOURCES.map((s) => [s.name, s.secretVariable])) as {
  readonly [S in WebhookSourceOf as S['name']]: S['secretVariable'];
};

const byPath = new Map<string, WebhookSourceShape & { name: WebhookSource }>(WEBHOOK_SOURCES.map((s) => [s.path, s]));

/** The webhook source whose route is `path`, if any. */
export const sourceAtPath = (path: string): (WebhookSourceShape & { name: WebhookSource }) | undefined =>
  byPath.get(path);

/** Every route, for the answer to a path no source serves. */
export const SOURCE_PATHS: readonly string[] = WEBHOOK_SOURCES.map((s) => s.path);

const normalizers = new Map<string, Normalizer>(
  [...WEBHOOK_SOURCES, ...TOPIC_SOURCES].map((s) => [s.name, s.normalize] as const),
);

/** The normaliser of a message's `source` attribute, if any source has that name. */
export const normalizerOf = (source: string): Normalizer | undefined => normalizers.get(source);
