import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { http } from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { ingestHandler } from '../../functions/local/http-adapter.ts';
import type { IngestDeps } from '../../shared/pipeline/ingest.ts';

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

/** The ingest function with the given dependencies, behind functions-framework's real server. */
export async function startIngestServer(deps: IngestDeps): Promise<RunningServer> {
  const name = `ingest-${randomUUID()}`;
  http(name, ingestHandler(deps));
  const server = getTestServer(name);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => {
          if (error) reject(error);
          else resolve();
        });
      }),
  };
}
