// The baseline the ingest benchmark compares with: functions-framework reading the body and
// answering 202, doing nothing else.
import { http } from '@google-cloud/functions-framework';

http('bare', (_req, res) => {
  res.status(202).json({ status: 'accepted' });
});
