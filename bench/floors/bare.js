// The floor of any HTTP function: functions-framework answering 202 after reading the body,
// doing nothing else (plain JavaScript, so nothing is type-stripped at start).
import { http } from '@google-cloud/functions-framework';

http('bare', (_req, res) => {
  res.status(202).json({ status: 'accepted' });
});
