/**
 * `devstats doctor`: what a new setup gets wrong, checked one by one, each with what to fix.
 * It reads; it never writes to the store, Datadog or Pub/Sub.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { type Config, hasSecret, loadConfig, secretList } from '../pipeline/config.ts';
import { SECRET_VARIABLES, type WebhookSource } from '../sources/registry.ts';
import { ConfigError } from '../config-error.ts';
import { createLogger } from '../log.ts';
import { type Settings } from '../events/settings.ts';
import { loadSettings } from '../events/settings-file.ts';
import { validateApiKey } from '../export/datadog-api.ts';
import { openStore } from '../store/open.ts';
import { liveReport } from '../report/live.ts';
import { findingLines } from '../report/render.ts';

interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

const hoursSince = (iso: string, now: Date) => (now.getTime() - Date.parse(iso)) / 3_600_000;

function secretChecks(config: Config): Check[] {
  return (Object.keys(SECRET_VARIABLES) as WebhookSource[]).map((source) => {
    const variable = SECRET_VARIABLES[source];
    const file = config.secretFiles[source];
    const name = `secret of ${source}`;
    if (file !== undefined) {
      try {
        const secrets = secretList(readFileSync(file, 'utf8'));
        return secrets.length > 0
          ? { name, status: 'ok', detail: `${String(secrets.length)} from ${file}` }
          : { name, status: 'fail', detail: `${file} is empty`, fix: `write the secret into ${file}` };
      } catch (error) {
        return {
          name,
          status: 'fail',
          detail: `${file} cannot be read: ${(error as Error).message}`,
          fix: `mount the secret at ${file}, or unset ${variable}_FILE`,
        };
      }
    }
    if (config.secrets[source].length > 0)
      return { name, status: 'ok', detail: `${String(config.secrets[source].length)} in ${variable}` };
    return config.insecureDev
      ? {
          name,
          status: 'warn',
          detail: 'none: accepted unsigned (DEVSTATS_INSECURE_DEV=1)',
          fix: `set ${variable} before anything but your own machine sends to it`,
        }
      : {
          name,
          status: 'warn',
          detail: `none: its deliveries are refused (401)`,
          fix: `set ${variable} (or ${variable}_FILE) if ${source} sends to DevStats; leave it unset otherwise`,
        };
  });
}

async function datadogCheck(config: Config): Promise<Check> {
  const name = 'Datadog API key';
  if (config.datadog.apiKey === undefined) {
    return {
      name,
      status: config.onGoogleCloud ? 'fail' : 'warn',
      detail: `DD_API_KEY is not set: requests are written to ${join(config.dataDir, 'datadog')}/*.jsonl`,
      fix: 'set DD_API_KEY (and DD_SITE if not datadoghq.com) to send to Datadog',
    };
  }
  const where = config.datadog.apiUrl ?? `https://api.${config.datadog.site}`;
  const valid = await validateApiKey(
    config.datadog,
    createLogger(() => undefined),
  );
  if (valid === true) return { name, status: 'ok', detail: `valid at ${where}` };
  if (valid === false)
    return {
      name,
      status: 'fail',
      detail: `${where} refuses it (403)`,
      fix: `check DD_API_KEY, and that DD_SITE (${config.datadog.site}) is the site of its organisation`,
    };
  return {
    name,
    status: 'fail',
    detail: `${where} could not be reached: ${valid.message}`,
    fix: 'check the network path to Datadog (proxy, egress rules) and DD_SITE',
  };
}

async function pubsubChecks(config: Config, settings: Settings): Promise<Check[]> {
  if (config.bus !== 'pubsub') {
    const path = join(config.dataDir, 'queue.sqlite');
    if (!existsSync(path))
      return [{ name: 'queue', status: 'ok', detail: `in-process, on disk at ${path} (not created yet)` }];
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      const count = (table: string) =>
        Number((db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number | bigint }).n);
      const waiting = count('messages');
      const dead = count('dead_letters');
      return [
        dead === 0
          ? {
              name: 'queue',
              status: 'ok',
              detail: `in-process at ${path}: ${String(waiting)} waiting, no dead letters`,
            }
          : {
              name: 'queue',
              status: 'warn',
              detail: `in-process at ${path}: ${String(waiting)} waiting, ${String(dead)} dead letters (not counted)`,
              fix: 'see why in the log (or `devstats events --failed`), then `devstats replay`',
            },
      ];
    } finally {
      db.close();
    }
  }
  const { PubSub } = await import('@google-cloud/pubsub');
  const pubsub = new PubSub({ projectId: config.projectId });
  const where =
    config.pubsubEmulatorHost === undefined
      ? `project ${config.projectId}`
      : `the emulator at ${config.pubsubEmulatorHost}`;
  const checks: Check[] = [];
  const fix = config.pubsubEmulatorHost === undefined ? 'run `terraform apply` in infra/' : '`npm start` creates it';
  const existence = (name: string, exists: boolean): Check =>
    exists
      ? { name, status: 'ok', detail: `exists in ${where}` }
      : { name, status: 'fail', detail: `missing in ${where}`, fix };
  try {
    const topics = [config.rawTopic, config.tickTopic, ...Object.keys(settings.pubsubSources)];
    for (const topic of topics) checks.push(existence(`topic ${topic}`, (await pubsub.topic(topic).exists())[0]));
    // Locally the pull subscriptions are DevStats' own; on Google Cloud, Eventarc names its push subscriptions.
    if (config.pubsubEmulatorHost !== undefined) {
      const subscriptions = [
        ...topics.filter((t) => t !== config.tickTopic).map((t) => `devstats-process-${t}`),
        'devstats-rollup',
      ];
      for (const name of subscriptions)
        checks.push(existence(`subscription ${name}`, (await pubsub.subscription(name).exists())[0]));
    }
  } catch (error) {
    checks.push({
      name: 'Pub/Sub',
      status: 'fail',
      detail: `${where} could not be asked: ${(error as Error).message.split('\n')[0] ?? ''}`,
      fix:
        config.pubsubEmulatorHost === undefined
          ? 'check the credentials (gcloud auth application-default login)'
          : 'start the emulator',
    });
  } finally {
    await pubsub.close();
  }
  return checks;
}

async function lastDeliveryChecks(config: Config, settings: Settings, now: Date): Promise<Check[]> {
  let seen: Record<string, string>;
  try {
    const store = await openStore(config);
    try {
      seen = await store.sourcesSeen();
    } finally {
      await store.close();
    }
  } catch (error) {
    return [
      {
        name: 'store',
        status: 'fail',
        detail: `could not be read: ${(error as Error).message}`,
        fix: config.store === 'firestore' ? 'check the Firestore database and credentials' : `check ${config.dataDir}`,
      },
    ];
  }
  const configured = (Object.keys(SECRET_VARIABLES) as WebhookSource[]).filter((s) => hasSecret(config, s));
  const sources = [...new Set([...configured, ...Object.keys(seen)])].sort();
  if (sources.length === 0)
    return [
      {
        name: 'last delivery',
        status: 'warn',
        detail: 'no source has a secret and none has delivered',
        fix: 'configure a source (docs/sources/), or try `devstats demo`',
      },
    ];
  return sources.map((source) => {
    const at = seen[source];
    const name = `last delivery of ${source}`;
    if (at === undefined)
      return {
        name,
        status: 'warn',
        detail: 'none processed yet',
        fix: `check the webhook in ${source}: its URL, its secret, and its recent deliveries`,
      };
    const hours = hoursSince(at, now);
    return hours > settings.sourceSilenceHours
      ? {
          name,
          status: 'warn',
          detail: `${at}, ${(hours / 24).toFixed(1)} days ago`,
          fix: `has ${source} stopped sending? Look at its webhook's recent deliveries`,
        }
      : { name, status: 'ok', detail: `${at} (${hours.toFixed(1)} h ago)` };
  });
}

/** The quarter so far's data-quality findings, as the report and the live view show them: one line. */
async function dataQualityCheck(config: Config, settings: Settings, now: Date): Promise<Check> {
  const name = 'data quality (this quarter so far)';
  try {
    const store = await openStore(config);
    try {
      const lines = findingLines(await liveReport(store, settings, now));
      return lines.length === 0
        ? { name, status: 'ok', detail: 'no findings' }
        : {
            name,
            status: 'warn',
            detail: lines.join('; '),
            fix: 'see "How far to trust these numbers" on the live view or in `devstats report`',
          };
    } finally {
      await store.close();
    }
  } catch (error) {
    return { name, status: 'warn', detail: `not checked: ${(error as Error).message}` };
  }
}

export async function doctor(env: Record<string, string | undefined>, now = new Date()): Promise<Check[]> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return [{ name: 'environment', status: 'fail', detail: error.message, fix: 'correct the variable it names' }];
  }
  let settings: Settings;
  const checks: Check[] = [];
  try {
    settings = loadSettings(config.settingsPath);
    const teams = Object.keys(settings.teams);
    checks.push(
      config.settingsPath === undefined
        ? {
            name: 'configuration',
            status: 'warn',
            detail: 'no DEVSTATS_CONFIG: defaults, no teams (every figure is for all)',
            fix: 'write a devstats.yaml with your teams and set DEVSTATS_CONFIG (docs/configuration.md)',
          }
        : {
            name: 'configuration',
            status: 'ok',
            detail: `${config.settingsPath}: ${String(teams.length)} teams (${teams.join(', ') || 'none'})`,
          },
    );
  } catch (error) {
    return [
      ...checks,
      {
        name: 'configuration',
        status: 'fail',
        detail: (error as Error).message,
        fix: `correct ${config.settingsPath ?? 'the file'}`,
      },
    ];
  }
  checks.push(...secretChecks(config));
  checks.push(await datadogCheck(config));
  checks.push(...(await pubsubChecks(config, settings)));
  checks.push(...(await lastDeliveryChecks(config, settings, now)));
  checks.push(await dataQualityCheck(config, settings, now));
  return checks;
}
