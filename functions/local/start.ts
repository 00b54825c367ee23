/**
 * `npm start`: the ingest target on a local port, with process and rollup behind it (embedded.ts),
 * as functions-framework's own CLI would serve it, plus what the CLI cannot do: bind to 127.0.0.1
 * only when DEVSTATS_INSECURE_DEV accepts unsigned data, and say at start what runs where.
 * On Google Cloud, functions-framework's CLI starts each target itself; this file is not used.
 */
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { hasSecret } from '../../shared/pipeline/config.ts';
import { SECRET_VARIABLES, type WebhookSource } from '../../shared/sources/registry.ts';
import '../index.ts';
import { instanceRuntime } from '../../shared/pipeline/wiring.ts';

const { config, settings } = instanceRuntime();
const port = Number(process.env.PORT ?? 8080);
// Unsigned data is accepted only from this machine.
const host = config.insecureDev ? '127.0.0.1' : (process.env.HOST ?? '0.0.0.0');

const server = getTestServer('ingest');
server.setTimeout(0);
server.listen(port, host, () => {
  const { port: bound } = server.address() as AddressInfo;
  const shown = host === '0.0.0.0' ? 'localhost' : host;
  const mode = config.onGoogleCloud ? 'cloud' : config.bus === 'pubsub' ? 'emulator' : 'embedded';
  const lines = [
    `DevStats ${mode} mode: ingest on http://${shown}:${bound}/ (${host === '0.0.0.0' ? 'every interface' : host + ' only'})`,
    `  queue    ${config.bus === 'pubsub' ? `Pub/Sub ${config.pubsubEmulatorHost ? `emulator at ${config.pubsubEmulatorHost}` : ''}`.trim() : 'in-process, on disk'} → process, rollup every ${config.rollupIntervalSeconds} s`,
    `  store    ${config.store === 'sqlite' ? join(config.dataDir, 'devstats.sqlite') : `Firestore${process.env.FIRESTORE_EMULATOR_HOST ? ` emulator at ${process.env.FIRESTORE_EMULATOR_HOST}` : ''}`}`,
    `  Datadog  ${config.datadog.apiKey === undefined ? `no DD_API_KEY: requests written to ${join(config.dataDir, 'datadog')}/*.jsonl` : (config.datadog.apiUrl ?? `https://api.${config.datadog.site}`)}`,
    `  sources  ${(Object.keys(SECRET_VARIABLES) as WebhookSource[])
      .map((source) => {
        return `${source} ${hasSecret(config, source) ? 'secret set' : config.insecureDev ? 'NO SECRET (accepted: insecure)' : 'no secret (refused, 401)'}`;
      })
      .join(', ')}`,
    `  config   ${config.settingsPath ?? 'none (defaults)'}; days in ${settings.timezone}; production = ${settings.productionEnvironments.join(', ')}`,
  ];
  if (config.insecureDev) {
    lines.push(
      '  !!! INSECURE: DEVSTATS_INSECURE_DEV=1 accepts unsigned deliveries for sources without a secret.',
      '  !!! Listening on 127.0.0.1 only. Never set it anywhere but your own machine.',
    );
  }
  process.stdout.write(lines.join('\n') + '\n');
});
