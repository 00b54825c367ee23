/* global require, module */
// In the bundle, the Datadog client gzips request bodies with Node's zlib instead of pako (a
// JavaScript port of zlib): the same format, from the native library. The client reads `.buffer`,
// so each result is copied into an ArrayBuffer of its own exact size.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a CommonJS module, as pako is
const zlib = require('node:zlib');
const own = (buffer) => new Uint8Array(buffer);
module.exports = {
  gzip: (data) => own(zlib.gzipSync(data)),
  deflate: (data) => own(zlib.deflateSync(data)),
};
