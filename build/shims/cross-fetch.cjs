/* global module */
// In the bundle, the Datadog client's fallback fetch is Node's own: DevStats always passes its
// own fetch (policyFetch), so node-fetch and its URL and punycode polyfills are never loaded.
module.exports = globalThis.fetch;
module.exports.fetch = globalThis.fetch;
module.exports.default = globalThis.fetch;
