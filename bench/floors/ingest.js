/* global process, Buffer */
// The floor of an `ingest` cold start: a plain-JavaScript HTTP function, run by
// functions-framework as `ingest` is, that publishes each request's body to `devstats-raw` with
// @google-cloud/pubsub (created at load) and answers 202 once Pub/Sub has it.
import { http } from '@google-cloud/functions-framework';
import { PubSub } from '@google-cloud/pubsub';

const topic = new PubSub({ projectId: process.env.GOOGLE_CLOUD_PROJECT }).topic('devstats-raw');
http('ingest', async (req, res) => {
  await topic.publishMessage({ data: req.rawBody ?? Buffer.from(''), attributes: { source: 'github' } });
  res.status(202).json({ status: 'accepted' });
});
