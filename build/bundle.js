/* global process, console, performance */
// `npm run gcp-build` (and `npm run bundle`): each function as deployed, bundled with esbuild into dist/bundle/<target>.js
// (ESM, code split, so a target loads only what it imports, and a lazy import is a chunk of its own).
//
// The Datadog client's serializers (`models/ObjectSerializer.js`, one for v1 and one for v2) import
// every model of the API: about 24,000 files, 900 ms to load for the one DORA call. In the bundle
// each keeps only the models the APIs DevStats calls can reach: the types those APIs serialize and
// deserialize, and what those models' attributes name, followed to the end.
//
// The Firestore client is bundled too: loading it from node_modules, file by file through Node's
// CommonJS loader, took ~150 ms of `process`'s cold start. Two of its files are changed on the way
// in (see node-modules-fixups). functions-framework (whose server must see the targets registered),
// and the Pub/Sub and Cloud Build clients (ingest and the CLI, whose start is not measured against
// an aim) stay in node_modules, as they are installed on deploy.
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const client = join(root, 'node_modules/@datadog/datadog-api-client/dist/packages');

/** The APIs shared/export/datadog-api.ts imports, by package. */
const USED_APIS = {
  'datadog-api-client-v1': ['MetricsApi', 'EventsApi'],
  'datadog-api-client-v2': ['DORAMetricsApi'],
};

/** The model names an API file or a model file mentions in its serialize calls or attribute types. */
function typeNames(source) {
  const names = new Set();
  for (const [, types] of source.matchAll(/(?:serialize|deserialize)\([^"]*"([^"]+)"/g)) {
    for (const name of types.match(/[A-Z][A-Za-z0-9]*/g) ?? []) names.add(name);
  }
  for (const [, types] of source.matchAll(/type: "([^"]+)"/g)) {
    for (const name of types.match(/[A-Z][A-Za-z0-9]*/g) ?? []) names.add(name);
  }
  return names;
}

/** The serializer of one package, keeping only the models its used APIs can reach. */
export function trimmedSerializer(pkg) {
  const models = join(client, pkg, 'models');
  const source = readFileSync(join(models, 'ObjectSerializer.js'), 'utf8');
  const oneOfStart = source.indexOf('const oneOfMap = {');
  const oneOf = new Map();
  for (const [, name, members] of source.slice(oneOfStart).matchAll(/^ {4}(\w+): \[([^\]]*)\]/gm)) {
    oneOf.set(
      name,
      [...members.matchAll(/"(\w+)"/g)].map((m) => m[1]),
    );
  }
  const known = new Set([...source.matchAll(/^const (\w+)_1 = require\("\.\/\w+"\);$/gm)].map((m) => m[1]));
  const reachable = new Set();
  const queue = [];
  const reach = (name) => {
    if (reachable.has(name)) return;
    if (oneOf.has(name)) {
      reachable.add(name);
      for (const member of oneOf.get(name)) reach(member);
    } else if (known.has(name)) {
      reachable.add(name);
      queue.push(name);
    }
  };
  for (const api of USED_APIS[pkg]) {
    for (const name of typeNames(readFileSync(join(client, pkg, 'apis', `${api}.js`), 'utf8'))) reach(name);
  }
  while (queue.length > 0) {
    const name = queue.pop();
    for (const next of typeNames(readFileSync(join(models, `${name}.js`), 'utf8'))) reach(next);
  }
  const kept = source
    .split('\n')
    .filter((line) => {
      const required = /^const (\w+)_1 = require\("\.\/\w+"\);$/.exec(line);
      if (required) return reachable.has(required[1]);
      const mapped = /^ {4}(\w+): (\w+)_1\.\w+,$/.exec(line);
      if (mapped) return reachable.has(mapped[2]);
      return true;
    })
    .join('\n');
  // The client's generated code changed shape: keeping a require without its map entry (or the
  // reverse) would break serialization quietly, so the build stops instead.
  const requires = (kept.match(/^const \w+_1 = require\("\.\/\w+"\);$/gm) ?? []).length;
  const entries = (kept.match(/^ {4}\w+: \w+_1\.\w+,$/gm) ?? []).length;
  if (known.size === 0 || requires === 0 || requires !== entries)
    throw new Error(`${pkg} ObjectSerializer: kept ${requires} models and ${entries} map entries of ${known.size}`);
  return { source: kept, models: requires, of: known.size };
}

/**
 * Requires of what DevStats never uses, made lazy (by file under node_modules: the require as
 * written, and the lazy form). The Firestore client's API package loads at start the static
 * protobuf code of every message (protos.js, 1.4 MB) and the admin client; the Firestore client
 * reads neither unless asked.
 */
const LAZY = {
  '@google-cloud/firestore-api/build/src/index.js': [
    'const protos = require("../protos/protos");\nexports.protos = protos;',
    'Object.defineProperty(exports, "protos", { enumerable: true, get: () => require("../protos/protos") });',
  ],
  '@google-cloud/firestore-api/build/src/v1/index.js': [
    'var firestore_admin_client_1 = require("./firestore_admin_client");\nObject.defineProperty(exports, "FirestoreAdminClient", { enumerable: true, get: function () { return firestore_admin_client_1.FirestoreAdminClient; } });',
    'Object.defineProperty(exports, "FirestoreAdminClient", { enumerable: true, get: function () { return require("./firestore_admin_client").FirestoreAdminClient; } });',
  ],
};

const NAMES_OWN_PATH = /\b__(dirname|filename)\b/;
/**
 * esbuild plugin: the LAZY rewrites; and a bundled CommonJS file that names __dirname or
 * __filename (google-gax and grpc-js find their .proto files by it) gets its own, as it had in
 * node_modules, from the chunk's place: the bundle and node_modules keep their places on deploy.
 */
const nodeModulesFixups = {
  name: 'node-modules-fixups',
  setup(builder) {
    builder.onLoad({ filter: /[/\\]node_modules[/\\].*\.js$/ }, (args) => {
      const file = args.path
        .split(/[/\\]node_modules[/\\]/)
        .at(-1)
        .replaceAll('\\', '/');
      let source = readFileSync(args.path, 'utf8');
      const lazy = LAZY[file];
      if (lazy === undefined && !NAMES_OWN_PATH.test(source)) return undefined;
      if (lazy !== undefined) {
        // The package changed shape: the build stops rather than bundle what it no longer knows.
        if (!source.includes(lazy[0])) throw new Error(`${file} no longer has: ${lazy[0]}`);
        source = source.replace(lazy[0], lazy[1]);
      }
      if (NAMES_OWN_PATH.test(source)) {
        const own = JSON.stringify(relative(resolve(root, outdir), args.path));
        source = `var __filename = __devstatsPath.join(__devstatsDir, ${own}), __dirname = __devstatsPath.dirname(__filename);${source}`;
      }
      return { contents: source, loader: 'js', resolveDir: dirname(args.path) };
    });
  },
};

const trimmed = {};
/** esbuild plugin: the two serializers replaced by their trimmed sources. */
const trimSerializers = {
  name: 'trim-datadog-serializers',
  setup(builder) {
    builder.onLoad({ filter: /datadog-api-client-v[12][/\\]models[/\\]ObjectSerializer\.js$/ }, (args) => {
      const pkg = /(datadog-api-client-v[12])/.exec(args.path)[1];
      trimmed[pkg] ??= trimmedSerializer(pkg);
      return { contents: trimmed[pkg].source, loader: 'js', resolveDir: dirname(args.path) };
    });
  },
};

/** `--outdir <dir>` (the tests bundle into a folder of their own); dist/bundle by default. */
const outdirAt = process.argv.indexOf('--outdir');
const outdir = outdirAt === -1 ? 'dist/bundle' : process.argv[outdirAt + 1];
const started = performance.now();
await build({
  absWorkingDir: root,
  entryPoints: {
    index: 'functions/index.ts',
    ingest: 'functions/ingest.ts',
    process: 'functions/process.ts',
    rollup: 'functions/rollup.ts',
  },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  sourcemap: true,
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'linked',
  external: ['@google-cloud/functions-framework', '@google-cloud/pubsub', '@google-cloud/cloudbuild'],
  alias: { 'cross-fetch': './build/shims/cross-fetch.cjs', pako: './build/shims/pako.cjs' },
  // The CommonJS packages inside (the Datadog client, yaml, the Firestore client) call require() for
  // Node's modules; the chunk's folder is where node-modules-fixups finds a file's own __dirname.
  banner: {
    js: [
      "import { createRequire as __devstatsRequire } from 'node:module';",
      "import * as __devstatsPath from 'node:path';",
      'const require = __devstatsRequire(import.meta.url);',
      'const __devstatsDir = import.meta.dirname;',
    ].join('\n'),
  },
  plugins: [trimSerializers, nodeModulesFixups],
  logLevel: 'warning',
});
const kept = Object.entries(trimmed)
  .map(([pkg, t]) => `${pkg.replace('datadog-api-client-', '')} ${t.models} of ${t.of} models`)
  .join(', ');
console.log(`bundled ${outdir} in ${Math.round(performance.now() - started)} ms; Datadog serializers kept ${kept}`);
if (process.exitCode) process.exit(process.exitCode);
