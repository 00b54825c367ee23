import type { HttpFunction } from '@google-cloud/functions-framework';
import { liveReport, renderLiveView } from '../../shared/report/live.ts';
import type { Runtime } from '../../shared/pipeline/wiring.ts';

/** `GET /` of a local run: the live view, rendered from the store on each request. */
export function liveViewHandler(runtime: Runtime): HttpFunction {
  const { config, settings, logger, journal } = runtime;
  const mode = config.bus === 'pubsub' ? 'emulator' : 'embedded';
  return (_req, res) => {
    const now = new Date();
    runtime
      .store()
      .then(async (store) => {
        const [report, seen] = await Promise.all([liveReport(store, settings, now), store.sourcesSeen()]);
        const html = renderLiveView({
          report,
          recent: journal?.recent() ?? [],
          refusals: journal?.refusals() ?? [],
          lastBySource: journal?.lastBySource() ?? new Map(),
          seen,
          config,
          settings,
          mode,
          now,
        });
        res.status(200).set('content-type', 'text/html; charset=utf-8').set('cache-control', 'no-store').send(html);
      })
      .catch((error: unknown) => {
        logger.error('live view failed', { error: String(error) });
        res
          .status(503)
          .set('content-type', 'text/plain; charset=utf-8')
          .send('the store could not be read; see the log');
      });
  };
}
