// `npm run bench`: every benchmark, one after the other (each prints a Markdown table).
await import('./cold.ts');
await import('./ingest.ts');
await import('./process.ts');
await import('./cpu.ts');
await import('./datadog.ts');
await import('./walk.ts');
await import('./report.ts');
// A year of 150 repositories through `devstats backfill github`: about 5 minutes.
await import('./backfill.ts');
