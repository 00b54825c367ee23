import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** What a request carries that an authenticator may read. Header names are lower case. */
export type Headers = Readonly<Record<string, string | undefined>>;

/** `undefined` when the request is authentic, else why not (safe to show the sender). */
export type Authenticator = (headers: Headers, rawBody: Buffer, secrets: readonly string[]) => string | undefined;

const HEX = /^[0-9a-f]+$/i;

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Compares two strings in constant time whatever their lengths, by comparing their digests. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/**
 * An HMAC over the raw body bytes, hex-encoded in a header, optionally behind a prefix.
 * GitHub: `X-Hub-Signature-256: sha256=<hex>`
 * (https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries);
 * HCP Terraform: `X-TFE-Notification-Signature: <hex HMAC-SHA512>`
 * (https://developer.hashicorp.com/terraform/cloud-docs/api-docs/notification-configurations#notification-authenticity).
 */
export function hmacSignature(options: {
  header: string;
  algorithm: 'sha256' | 'sha512';
  prefix: string;
}): Authenticator {
  const name = options.header.toLowerCase();
  return (headers, rawBody, secrets) => {
    const value = headers[name];
    if (value === undefined || value === '') return `missing ${options.header} header`;
    if (!value.startsWith(options.prefix)) return `${options.header} must start with "${options.prefix}"`;
    const hex = value.slice(options.prefix.length).trim();
    if (!HEX.test(hex) || hex.length % 2 !== 0) return `${options.header} is not a hex digest`;
    const given = Buffer.from(hex, 'hex');
    const matches = secrets.some((secret) =>
      sameBytes(given, createHmac(options.algorithm, secret).update(rawBody).digest()),
    );
    return matches ? undefined : `${options.header} does not match the body`;
  };
}

/**
 * CircleCI's `circleci-signature: v1=<hex HMAC-SHA256>`: a comma-separated list of versioned
 * signatures, of which any `v1` entry may match (https://circleci.com/docs/webhooks-reference/).
 */
export function versionedSignatureList(options: { header: string; version: string }): Authenticator {
  const name = options.header.toLowerCase();
  const single = hmacSignature({ header: options.header, algorithm: 'sha256', prefix: `${options.version}=` });
  return (headers, rawBody, secrets) => {
    const value = headers[name];
    if (value === undefined || value === '') return `missing ${options.header} header`;
    const entries = value
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry.startsWith(`${options.version}=`));
    if (entries.length === 0) return `${options.header} has no ${options.version}= signature`;
    const matched = entries.some((entry) => single({ [name]: entry }, rawBody, secrets) === undefined);
    return matched ? undefined : `${options.header} does not match the body`;
  };
}

/**
 * A shared token, either as `Authorization: Bearer <token>` or, when `basic` is set, as the
 * password of Basic auth (Spinnaker Echo's `rest.endpoints[].username/password`).
 */
export function sharedToken(options: { basic: boolean }): Authenticator {
  return (headers, _rawBody, secrets) => {
    const authorization = headers.authorization;
    if (authorization === undefined || authorization === '') return 'missing Authorization header';
    const space = authorization.indexOf(' ');
    const scheme = (space < 0 ? authorization : authorization.slice(0, space)).toLowerCase();
    const credentials = space < 0 ? '' : authorization.slice(space + 1).trim();
    let token: string;
    if (scheme === 'bearer') {
      token = credentials;
    } else if (scheme === 'basic' && options.basic) {
      const decoded = Buffer.from(credentials, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return 'Basic credentials must be user:password';
      token = decoded.slice(colon + 1);
    } else {
      return options.basic ? 'Authorization must be Bearer or Basic' : 'Authorization must be Bearer';
    }
    if (token === '') return 'empty token in Authorization header';
    // Every secret is compared, so the time taken does not tell which one (or whether any) matched.
    let matched = false;
    for (const secret of secrets) matched = sameSecret(token, secret) || matched;
    return matched ? undefined : 'wrong token in Authorization header';
  };
}
