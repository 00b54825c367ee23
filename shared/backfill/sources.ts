import type { Config } from '../pipeline/config.ts';
import type { Logger } from '../log.ts';
import type { Settings } from '../events/settings.ts';
import { type HistorySource } from './core.ts';
import { apiClient } from './http.ts';

/** Every source `devstats backfill` reads, in the order `all` runs them (history before deploys). */
export const BACKFILL_SOURCES = [
  'github',
  'spinnaker',
  'terraform',
  'circleci',
  'cloudbuild',
  'pagerduty',
  'opsgenie',
] as const;
type BackfillSourceName = (typeof BACKFILL_SOURCES)[number];

interface BackfillScopes {
  repositories: string[];
  applications: string[];
}

/** A configured source's history, with a counter of its rate-limit waits; undefined when not configured. */
export async function historySource(
  name: BackfillSourceName,
  config: Config,
  settings: Settings,
  scopes: BackfillScopes,
  logger: Logger,
): Promise<{ source: HistorySource; waits: () => number } | { missing: string }> {
  const b = config.backfill;
  switch (name) {
    case 'github': {
      if (config.github.token === undefined) return { missing: 'GITHUB_TOKEN' };
      const [{ githubClient }, { githubHistory }] = await Promise.all([
        import('../github/client.ts'),
        import('./github.ts'),
      ]);
      let waits = 0;
      const octokit = await githubClient({
        token: config.github.token,
        baseUrl: config.github.apiUrl,
        logger,
        onWait: () => {
          waits++;
        },
      });
      const repositories =
        scopes.repositories.length > 0
          ? scopes.repositories
          : [...new Set(Object.values(settings.teams).flatMap((t) => t.repositories))];
      return { source: githubHistory(octokit, repositories), waits: () => waits };
    }
    case 'spinnaker': {
      if (b.spinnakerGateUrl === undefined) return { missing: 'SPINNAKER_GATE_URL' };
      const { spinnakerHistory, SPINNAKER_CREDENTIAL } = await import('./spinnaker.ts');
      const headers: Record<string, string> = {};
      if (b.spinnakerGateToken !== undefined) headers.authorization = `Bearer ${b.spinnakerGateToken}`;
      else if (b.spinnakerGateBasic !== undefined)
        headers.authorization = `Basic ${Buffer.from(b.spinnakerGateBasic).toString('base64')}`;
      const api = apiClient({ headers, logger, credential: SPINNAKER_CREDENTIAL });
      const applications =
        scopes.applications.length > 0
          ? scopes.applications
          : [...new Set(Object.values(settings.teams).flatMap((t) => t.services))];
      return { source: spinnakerHistory(api, b.spinnakerGateUrl, applications), waits: api.waits };
    }
    case 'terraform': {
      if (b.tfcToken === undefined || b.tfcOrganization === undefined)
        return { missing: 'TFC_TOKEN and TFC_ORGANIZATION' };
      const { terraformHistory, TERRAFORM_CREDENTIAL } = await import('./terraform.ts');
      const api = apiClient({
        headers: { authorization: `Bearer ${b.tfcToken}`, accept: 'application/vnd.api+json' },
        logger,
        credential: TERRAFORM_CREDENTIAL,
        perSecond: 25,
      });
      return {
        source: terraformHistory(api, { baseUrl: b.tfcUrl, organization: b.tfcOrganization }),
        waits: api.waits,
      };
    }
    case 'circleci': {
      if (b.circleciToken === undefined) return { missing: 'CIRCLECI_TOKEN' };
      if (settings.circleci.projects.length === 0) return { missing: 'circleci.projects in the configuration file' };
      const { circleciHistory, CIRCLECI_CREDENTIAL } = await import('./circleci.ts');
      const api = apiClient({ headers: { 'circle-token': b.circleciToken }, logger, credential: CIRCLECI_CREDENTIAL });
      return { source: circleciHistory(api, b.circleciUrl, settings.circleci.projects), waits: api.waits };
    }
    case 'pagerduty': {
      if (b.pagerdutyToken === undefined) return { missing: 'PAGERDUTY_API_TOKEN' };
      const { pagerdutyHistory, PAGERDUTY_CREDENTIAL } = await import('./incidents.ts');
      const api = apiClient({
        headers: {
          authorization: `Token token=${b.pagerdutyToken}`,
          accept: 'application/vnd.pagerduty+json;version=2',
        },
        logger,
        credential: PAGERDUTY_CREDENTIAL,
        perSecond: 10,
      });
      return { source: pagerdutyHistory(api, b.pagerdutyUrl), waits: api.waits };
    }
    case 'opsgenie': {
      if (b.opsgenieKey === undefined) return { missing: 'OPSGENIE_API_KEY' };
      const { opsgenieHistory, OPSGENIE_CREDENTIAL } = await import('./incidents.ts');
      const api = apiClient({
        headers: { authorization: `GenieKey ${b.opsgenieKey}` },
        logger,
        credential: OPSGENIE_CREDENTIAL,
        perSecond: 10,
      });
      return { source: opsgenieHistory(api, b.opsgenieUrl), waits: api.waits };
    }
    case 'cloudbuild': {
      if (config.projectId === undefined) return { missing: 'GOOGLE_CLOUD_PROJECT' };
      const [{ CloudBuildClient }, { cloudbuildHistory }] = await Promise.all([
        import('@google-cloud/cloudbuild'),
        import('./cloudbuild.ts'),
      ]);
      const endpoint = b.cloudbuildApiUrl === undefined ? undefined : new URL(b.cloudbuildApiUrl);
      const client = new CloudBuildClient(
        endpoint === undefined
          ? {}
          : {
              // A local server that answers like the REST API (tests): the REST transport, no credentials.
              fallback: true,
              protocol: endpoint.protocol.replace(':', ''),
              apiEndpoint: endpoint.hostname,
              port: Number(endpoint.port),
              authClient: {
                getRequestHeaders: () => Promise.resolve(new Headers()),
                fetch: (url: string, init: RequestInit) =>
                  fetch(url, {
                    method: init.method ?? 'GET',
                    headers: init.headers ?? {},
                    body: init.body ?? null,
                    signal: init.signal ?? null,
                  }),
              } as never,
            },
      );
      return { source: cloudbuildHistory(client, config.projectId), waits: () => 0 };
    }
  }
}
