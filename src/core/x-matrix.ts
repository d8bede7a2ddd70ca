/**
 * X-Matrix request authentication — server-server-api.md "Request Authentication".
 *
 * Every federation request names its origin and destination and is signed by the origin:
 * the method, the request target (path and query, no scheme or host), both server names and
 * the JSON body are signed as one JSON object, and the signature travels in
 * `Authorization: X-Matrix origin="…",destination="…",key="…",sig="…"`. Server names are
 * those before delegation (the spec: "Delegation … do[es] not affect these").
 *
 * This module is pure: it builds and parses the header and the signed object. Checking an
 * incoming request against the origin's keys lives with the endpoints
 * (`src/api/federation/auth.ts`).
 */
import { encodeBase64 } from './base64.ts';
import type { JsonObject } from './canonical-json.ts';
import type { SigningKey } from './crypto.ts';
import { isValidKeyId, isValidServerName } from './identifiers.ts';
import { signedBytes } from './signing.ts';

/**
 * Request bodies are signed whatever numbers they hold: a transaction may carry events of room
 * versions 1–5, which allow floats and out-of-range integers, and to-device content is the
 * client's own. Strict canonical JSON would make such a request impossible to send or accept.
 */
export const X_MATRIX_JSON = { strict: false } as const;

/** The object an X-Matrix signature covers ("Step 1 sign JSON"). */
export function xMatrixSignedObject(parts: {
  method: string;
  uri: string;
  origin: string;
  /** Absent only when checking a request from an older server that did not send it. */
  destination: string | undefined;
  /** The JSON body; absent for requests without one (GET). */
  content: JsonObject | undefined;
}): JsonObject {
  const object: JsonObject = { method: parts.method, uri: parts.uri, origin: parts.origin };
  if (parts.destination !== undefined) object.destination = parts.destination;
  if (parts.content !== undefined) object.content = parts.content;
  return object;
}

export interface XMatrixCredentials {
  origin: string;
  /** Optional on receipt (added in v1.3; "recipients should accept requests without"). */
  destination: string | undefined;
  /** The signing key ID, `ed25519:abc`. */
  key: string;
  /** Unpadded base64 signature. */
  sig: string;
}

/**
 * The `Authorization` header value for a request. Follows the spec's advice "for
 * compatibility with older servers": one space after the scheme, lower-case names, no
 * whitespace around commas, every value quoted (server names and key IDs hold no `"` or `\`).
 */
export async function xMatrixAuthorization(request: {
  method: string;
  uri: string;
  origin: string;
  destination: string;
  content: JsonObject | undefined;
  key: SigningKey;
}): Promise<string> {
  const object = xMatrixSignedObject(request);
  const sig = encodeBase64(await request.key.sign(signedBytes(object, X_MATRIX_JSON)));
  return `X-Matrix origin="${request.origin}",destination="${request.destination}",key="${request.key.keyId}",sig="${sig}"`;
}

// RFC 9110 §5.6.2: tchar. Unquoted values may also hold ":" (the spec: "recipients should
// allow colons … without requiring the value to be enclosed in quotes"); "/" and "=" are let
// through too, as token68 allows, since unpadded base64 signatures hold "/" and some senders
// do not quote them.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const UNQUOTED_VALUE_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z:/=]/;
const OWS = /[ \t]/;

/** Why an X-Matrix header could not be read (each becomes a 401 M_UNAUTHORIZED). */
export class XMatrixParseError extends Error {
  override readonly name = 'XMatrixParseError';
}

/**
 * Reads an `Authorization` header as X-Matrix credentials (RFC 9110 §11.4 auth-params, as the
 * spec summarises them): scheme `X-Matrix` (case-insensitive, as every auth scheme), one or
 * more spaces, then comma-separated `name=value` pairs with optional spaces and tabs around
 * each comma; names case-insensitive, in any order; values bare or quoted, with backslash
 * escapes in quoted values; unknown names ignored. A name given twice is refused rather than
 * guessed at. Throws `XMatrixParseError`.
 */
export function parseXMatrix(header: string): XMatrixCredentials {
  const scheme = /^x-matrix +/i.exec(header);
  if (!scheme) throw new XMatrixParseError('the Authorization header is not of the X-Matrix scheme');
  const params = new Map<string, string>();
  let i = scheme[0].length;
  const n = header.length;
  const skipOws = () => {
    while (i < n && OWS.test(header[i] as string)) i++;
  };
  for (;;) {
    skipOws();
    if (i >= n) break;
    if (header[i] === ',') {
      // An empty list element ("a=1,,b=2") is allowed by RFC 9110 §5.6.1.
      i++;
      continue;
    }
    const eq = header.indexOf('=', i);
    if (eq === -1) throw new XMatrixParseError('an X-Matrix parameter has no "="');
    const name = header.slice(i, eq).toLowerCase();
    if (!TOKEN.test(name)) throw new XMatrixParseError(`"${name}" is not a parameter name`);
    i = eq + 1;
    let value = '';
    if (header[i] === '"') {
      i++;
      let closed = false;
      while (i < n) {
        const ch = header[i] as string;
        if (ch === '"') {
          closed = true;
          i++;
          break;
        }
        if (ch === '\\') {
          if (i + 1 >= n) break;
          value += header[i + 1];
          i += 2;
          continue;
        }
        value += ch;
        i++;
      }
      if (!closed) throw new XMatrixParseError(`the value of "${name}" has no closing quote`);
    } else {
      const start = i;
      while (i < n && UNQUOTED_VALUE_CHAR.test(header[i] as string)) i++;
      value = header.slice(start, i);
      if (value === '') throw new XMatrixParseError(`"${name}" has an empty value`);
    }
    if (params.has(name)) throw new XMatrixParseError(`"${name}" is given twice`);
    params.set(name, value);
    skipOws();
    if (i >= n) break;
    if (header[i] !== ',')
      throw new XMatrixParseError(`unexpected "${header[i]}" after the value of "${name}"`);
    i++;
  }
  const origin = params.get('origin');
  const destination = params.get('destination');
  const key = params.get('key');
  const sig = params.get('sig');
  if (origin === undefined || key === undefined || sig === undefined) {
    throw new XMatrixParseError('X-Matrix needs origin, key and sig');
  }
  if (!isValidServerName(origin)) throw new XMatrixParseError('origin is not a server name');
  if (destination !== undefined && !isValidServerName(destination)) {
    throw new XMatrixParseError('destination is not a server name');
  }
  if (!isValidKeyId(key, { server: true })) throw new XMatrixParseError('key is not a server key ID');
  return { origin, destination, key, sig };
}
