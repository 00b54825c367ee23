// The functions-framework entry point: each import registers one target.
import './ingest.ts';
import './process.ts';
import './rollup.ts';
import './local/embedded.ts';
