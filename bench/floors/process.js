/* global process, Buffer */
// The floor of a `process` cold start: a plain-JavaScript CloudEvent function, run by
// functions-framework as `process` is, that loads only the client `process` must use to store a
// delivery (@google-cloud/firestore, from node_modules) and makes one Firestore read and one
// write per event. PREFER_REST=1 gives Firestore `preferRest: true`, as the store has it with
// DEVSTATS_FIRESTORE_REST=1.
import { cloudEvent } from '@google-cloud/functions-framework';

const preferRest = process.env.PREFER_REST === '1';
/** Against the emulator REST needs an auth client that asks for nothing (the client adds `Bearer owner`). */
async function emulatorAuth() {
  const { OAuth2Client } = (await import('google-auth-library')).default;
  const client = new OAuth2Client();
  client.setCredentials({ access_token: 'owner' });
  return client;
}
const { Firestore } = (await import('@google-cloud/firestore')).default;
const db = new Firestore({
  preferRest,
  projectId: process.env.GOOGLE_CLOUD_PROJECT,
  ignoreUndefinedProperties: true,
  ...(preferRest && process.env.FIRESTORE_EMULATOR_HOST !== undefined ? { authClient: await emulatorAuth() } : {}),
});

cloudEvent('process', async (event) => {
  const deploy = JSON.parse(Buffer.from(event.data.message.data, 'base64').toString());
  const ref = db.collection('deploy').doc(`floor-${deploy.id}`);
  const snapshot = await ref.get();
  if (!snapshot.exists) await ref.create(deploy);
});
