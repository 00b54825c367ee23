import type { CanonicalEvent, Commit, Deploy } from '../events/model.ts';
import { isDivided, servicePathRule } from '../events/ownership.ts';
import type { Settings } from '../events/settings.ts';
import type { Logger } from '../log.ts';
import type { Config } from './config.ts';

/**
 * What a delivery leaves out and an API can tell (DESIGN.md, "Services owned by paths" and the
 * Terraform ingress attributes), looked up at process time, and so in backfill too:
 * - an HCP Terraform / Terraform Enterprise run without a sha: its configuration version's ingress
 *   attributes (commit sha, branch, repository) and its workspace's working directory, which
 *   becomes the paths its service owns when the configuration gives it none;
 * - a commit of a repository divided by paths whose files the delivery did not list: its files,
 *   from GitHub's commits API.
 * A lookup that fails leaves the event as it came (a deploy without a sha, a commit with unknown
 * files: data-quality findings), never drops or delays it.
 */
export interface Enrichers {
  terraformRun?: (runId: string) => Promise<TerraformOrigin | undefined>;
  commitFiles?: (repository: string, sha: string) => Promise<string[] | undefined>;
}

export interface TerraformOrigin {
  commitSha?: string;
  repository?: string;
  branch?: string;
  workingDirectory?: string;
}

/** Lookups per delivery at the most (a backfilled page is 100 commits; a push of 2,000 must not make 2,000 calls). */
const MAX_LOOKUPS = 100;
const AT_ONCE = 8;
const TIMEOUT_MS = 5000;

export async function enrich(
  events: CanonicalEvent[],
  settings: Settings,
  enrichers: Enrichers,
  logger: Logger,
): Promise<CanonicalEvent[]> {
  const out = [...events];
  const lookups: Array<() => Promise<void>> = [];
  out.forEach((event, i) => {
    if (event.kind === 'deploy' && event.source === 'terraform' && event.commitSha === undefined) {
      const lookup = enrichers.terraformRun;
      if (lookup !== undefined)
        lookups.push(async () => {
          out[i] = await withOrigin(event, settings, lookup, logger);
        });
    } else if (event.kind === 'commit' && event.paths === undefined && isDivided(settings, event.repository)) {
      const lookup = enrichers.commitFiles;
      if (lookup !== undefined && lookups.length < MAX_LOOKUPS)
        lookups.push(async () => {
          out[i] = await withFiles(event, lookup, logger);
        });
    }
  });
  // A few at a time: a page of backfilled commits is looked up in about a second, not a minute.
  for (let i = 0; i < lookups.length; i += AT_ONCE) await Promise.all(lookups.slice(i, i + AT_ONCE).map((l) => l()));
  return out;
}

async function withOrigin(
  deploy: Deploy,
  settings: Settings,
  lookup: NonNullable<Enrichers['terraformRun']>,
  logger: Logger,
): Promise<Deploy> {
  try {
    const origin = await lookup(deploy.externalId);
    if (origin?.commitSha === undefined) return deploy; // a CLI-driven run: no VCS origin
    const enriched: Deploy = { ...deploy, commitSha: origin.commitSha };
    if (origin.repository !== undefined) enriched.repository = origin.repository;
    const folder = origin.workingDirectory?.replace(/^\/+|\/+$/g, '');
    if (folder && servicePathRule(settings, deploy.service) === undefined) enriched.paths = [`${folder}/**`];
    return enriched;
  } catch (error) {
    logger.warn('HCP Terraform run lookup failed; the deploy is stored without a sha', {
      run: deploy.externalId,
      error: String(error),
    });
    return deploy;
  }
}

async function withFiles(
  commit: Commit,
  lookup: NonNullable<Enrichers['commitFiles']>,
  logger: Logger,
): Promise<Commit> {
  try {
    const paths = await lookup(commit.repository, commit.sha);
    return paths === undefined ? commit : { ...commit, paths };
  } catch (error) {
    logger.warn("a commit's files could not be read from GitHub; its files stay unknown", {
      commit: commit.id,
      error: String(error),
    });
    return commit;
  }
}

async function getJson(url: string, headers: Record<string, string>): Promise<unknown> {
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (response.status === 404) return undefined;
  if (!response.ok) throw new Error(`${url.replace(/\?.*$/, '')} answered ${String(response.status)}`);
  return response.json();
}

/** The lookups the configuration allows: HCP Terraform with `TFC_TOKEN`, GitHub with `GITHUB_TOKEN`. */
export function enrichersFor(config: Pick<Config, 'backfill' | 'github'>): Enrichers {
  const enrichers: Enrichers = {};
  const { tfcToken, tfcUrl } = config.backfill;
  if (tfcToken !== undefined) {
    const base = tfcUrl.replace(/\/$/, '');
    const headers = { authorization: `Bearer ${tfcToken}`, accept: 'application/vnd.api+json' };
    enrichers.terraformRun = async (runId) => {
      const answer = (await getJson(
        `${base}/api/v2/runs/${encodeURIComponent(runId)}?include=configuration_version.ingress_attributes,workspace`,
        headers,
      )) as { included?: Array<{ type: string; attributes?: Record<string, unknown> }> } | undefined;
      const included = answer?.included ?? [];
      const ingress = included.find((i) => i.type === 'ingress-attributes')?.attributes ?? {};
      const workspace = included.find((i) => i.type === 'workspaces')?.attributes ?? {};
      const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
      const origin: TerraformOrigin = {};
      const sha = text(ingress['commit-sha']);
      const repository = text(ingress.identifier);
      const branch = text(ingress.branch);
      const folder = text(workspace['working-directory']);
      if (sha !== undefined) origin.commitSha = sha;
      if (repository !== undefined) origin.repository = repository;
      if (branch !== undefined) origin.branch = branch;
      if (folder !== undefined) origin.workingDirectory = folder;
      return origin;
    };
  }
  const { token, apiUrl } = config.github;
  if (token !== undefined) {
    const base = (apiUrl ?? 'https://api.github.com').replace(/\/$/, '');
    const headers = {
      authorization: `Bearer ${token}`,
      accept: 'application/vnd.github+json',
      'x-github-api-version': '2022-11-28',
    };
    enrichers.commitFiles = async (repository, sha) => {
      const files: string[] = [];
      // 100 files a page, 3,000 at the most (the API's own limit).
      for (let page = 1; page <= 30; page++) {
        const answer = (await getJson(
          `${base}/repos/${repository}/commits/${encodeURIComponent(sha)}?per_page=100&page=${String(page)}`,
          headers,
        )) as { files?: Array<{ filename: string; previous_filename?: string }> } | undefined;
        if (answer === undefined) return undefined;
        const batch = answer.files ?? [];
        for (const f of batch) files.push(f.filename, ...(f.previous_filename ? [f.previous_filename] : []));
        if (batch.length < 100) break;
      }
      return [...new Set(files)].sort();
    };
  }
  return enrichers;
}
