/**
 * Access tokens — client-server-api/_index.md "Using access tokens", "Soft logout".
 *
 * The token comes from `Authorization: Bearer <token>` or, for older clients (matrix-nio still
 * sends it), the `access_token` query parameter that v1.20 stopped supporting. It is resolved to
 * a user and device by an injected `resolveToken`, so this module needs no store.
 */
import type { Auth } from '../homeserver/context.ts';
import { guestAccessForbidden, missingToken, unknownToken } from '../homeserver/errors.ts';

/** Who made the request, once the token is known (defined with the services that use it). */
export type { Auth } from '../homeserver/context.ts';

/**
 * Resolve a token to its owner, or `null` for an unknown one (→ 401 M_UNKNOWN_TOKEN).
 * To signal an expired token, a locked or suspended account, throw the `MatrixError` instead
 * (e.g. `unknownToken('Token expired', { softLogout: true })`); it reaches the client as is.
 */
export type ResolveToken = (token: string, request: TokenContext) => Promise<Auth | null>;

/** What a token is resolved with beside itself: `?user_id=` of application services, the caller's address. */
export interface TokenContext {
  url: URL;
  clientAddress?: string;
}

/** none: the token is never looked at; optional: used when given; required: 401 without it. */
export type AuthMode = 'none' | 'optional' | 'required';

export interface TokenOptions {
  /** Accept `?access_token=` (deprecated; removed from the spec in v1.20). Default true. */
  allowQueryToken?: boolean;
}

// RFC 6750 §2.1: `Bearer` (case-insensitive scheme), one space, then the token itself.
const BEARER = /^bearer +(\S+) *$/i;

/**
 * The access token the request carries, or `null` if none. A malformed `Authorization` header
 * or two different tokens (header and query) are refused with M_MISSING_TOKEN, as Synapse does:
 * the server cannot tell which credential the client meant.
 */
export function extractAccessToken(request: Request, url: URL, opts: TokenOptions = {}): string | null {
  const header = request.headers.get('authorization');
  let fromHeader: string | null = null;
  if (header !== null) {
    const m = BEARER.exec(header);
    if (!m || m[1] === undefined) {
      throw missingToken('Invalid Authorization header: expected "Bearer <access token>"');
    }
    fromHeader = m[1];
  }
  const fromQuery = opts.allowQueryToken === false ? null : url.searchParams.get('access_token') || null;
  if (fromHeader !== null && fromQuery !== null && fromHeader !== fromQuery) {
    throw missingToken('Mixing Authorization header and access_token query parameter');
  }
  return fromHeader ?? fromQuery;
}

/**
 * Authenticate a request for an endpoint with the given mode. Returns `null` for `none`, and for
 * `optional` without a token. A guest reaching an endpoint that does not allow guests gets
 * 403 M_GUEST_ACCESS_FORBIDDEN.
 */
export async function authenticate(
  request: Request,
  url: URL,
  mode: AuthMode,
  guestAllowed: boolean,
  resolveToken: ResolveToken,
  opts: TokenOptions = {},
  clientAddress?: string,
): Promise<Auth | null> {
  if (mode === 'none') return null;
  const token = extractAccessToken(request, url, opts);
  if (token === null) {
    if (mode === 'optional') return null;
    throw missingToken();
  }
  const auth = await resolveToken(token, { url, ...(clientAddress !== undefined ? { clientAddress } : {}) });
  if (auth === null) throw unknownToken();
  if (auth.isGuest && !guestAllowed) throw guestAccessForbidden();
  return auth;
}
