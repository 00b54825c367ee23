/* global process */
// Loaded with `node --import ./scripts/preflight.js` before any TypeScript, so it is plain
// JavaScript that Node 20 still reads: on a Node too old to run the TypeScript it says so in one
// line, instead of ERR_UNKNOWN_FILE_EXTENSION. It also keeps Node's notices that SQLite and type
// stripping are experimental out of normal output (every other warning is printed as usual).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `DevStats needs Node.js 22.18 or newer, and this is Node.js ${process.versions.node}: run \`. scripts/node22.sh\` first (it puts Node 22 on PATH).\n`,
  );
  process.exit(1);
}

const QUIET = /SQLite is an experimental feature|Type Stripping is an experimental feature/;
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  const text = typeof warning === 'string' ? warning : warning?.message;
  if (QUIET.test(String(text))) return;
  emitWarning(warning, ...rest);
};
