/**
 * Matrix errors, made in one place — client-server-api/_index.md "Standard error response",
 * "Common error codes", "Other error codes" and "Rate limiting".
 *
 * Services, handlers and the router throw `MatrixError` (through the constructors below); the
 * API layer's `toResponse` (src/api/response.ts) is the only place that turns one into an HTTP
 * response. The homeserver itself never makes a response.
 */
import type { JsonObject } from '../core/canonical-json.ts';

export class MatrixError extends Error {
  // A `name` (not only the class) identifies the error after structured cloning (postMessage).
  override readonly name = 'MatrixError';
  readonly errcode: string;
  readonly status: number;
  /** Extra top-level keys of the error body (`retry_after_ms`, `soft_logout`, `room_version` …). */
  readonly extra: JsonObject | undefined;
  /** Extra response headers (`Retry-After`, `Allow`). */
  readonly headers: Record<string, string> | undefined;

  constructor(
    status: number,
    errcode: string,
    message: string,
    extra?: JsonObject,
    headers?: Record<string, string>,
  ) {
    super(message);
    this.status = status;
    this.errcode = errcode;
    this.extra = extra;
    this.headers = headers;
  }

  /** The JSON body the spec requires: `errcode` and `error` always present. */
  toJSON(): JsonObject {
    return { ...this.extra, errcode: this.errcode, error: this.message };
  }
}

export function isMatrixError(err: unknown): err is MatrixError {
  return (
    err instanceof Error &&
    err.name === 'MatrixError' &&
    typeof (err as MatrixError).errcode === 'string' &&
    typeof (err as MatrixError).status === 'number'
  );
}

// --- Common error codes -------------------------------------------------------------------

export const forbidden = (message = 'Forbidden'): MatrixError => new MatrixError(403, 'M_FORBIDDEN', message);

export const notFound = (message = 'Not found'): MatrixError => new MatrixError(404, 'M_NOT_FOUND', message);

/** Valid JSON of the wrong shape (a missing key is `missingParam`). */
export const badJson = (message: string): MatrixError => new MatrixError(400, 'M_BAD_JSON', message);

export const notJson = (message = 'Content is not valid JSON'): MatrixError =>
  new MatrixError(400, 'M_NOT_JSON', message);

export const missingToken = (message = 'Missing access token'): MatrixError =>
  new MatrixError(401, 'M_MISSING_TOKEN', message);

/**
 * `soft_logout: true` tells the client it may log in again on the same device and keep its
 * keys ("Soft logout"); it is only written when true since its absence means false.
 */
export const unknownToken = (message = 'Unrecognised access token', opts: { softLogout?: boolean } = {}) =>
  new MatrixError(401, 'M_UNKNOWN_TOKEN', message, opts.softLogout ? { soft_logout: true } : undefined);

/**
 * 429 with both the deprecated `retry_after_ms` body key (older clients read only that) and
 * the `Retry-After` header in whole seconds, rounded up so a client never retries too early.
 */
export function limitExceeded(retryAfterMs: number, message = 'Too many requests'): MatrixError {
  const ms = Math.max(0, Math.ceil(retryAfterMs));
  return new MatrixError(
    429,
    'M_LIMIT_EXCEEDED',
    message,
    { retry_after_ms: ms },
    { 'Retry-After': String(Math.ceil(ms / 1000)) },
  );
}

export const tooLarge = (message = 'Request body too large'): MatrixError =>
  new MatrixError(413, 'M_TOO_LARGE', message);

/** 404 for a path no endpoint has; 405 (with `Allow`) for a known path and the wrong method. */
export function unrecognized(message = 'Unrecognized request', status: 404 | 405 = 404, allow?: string[]) {
  return new MatrixError(
    status,
    'M_UNRECOGNIZED',
    message,
    undefined,
    allow && allow.length > 0 ? { Allow: allow.join(', ') } : undefined,
  );
}

export const unknownError = (message = 'Internal server error', status = 500): MatrixError =>
  new MatrixError(status, 'M_UNKNOWN', message);

// --- Other error codes --------------------------------------------------------------------

export const invalidParam = (message: string): MatrixError =>
  new MatrixError(400, 'M_INVALID_PARAM', message);

export const missingParam = (message: string): MatrixError =>
  new MatrixError(400, 'M_MISSING_PARAM', message);

export const guestAccessForbidden = (message = 'Guest access is not allowed here'): MatrixError =>
  new MatrixError(403, 'M_GUEST_ACCESS_FORBIDDEN', message);

export const badState = (message: string): MatrixError => new MatrixError(400, 'M_BAD_STATE', message);

export const userInUse = (message = 'User ID already taken'): MatrixError =>
  new MatrixError(400, 'M_USER_IN_USE', message);

export const invalidUsername = (message: string): MatrixError =>
  new MatrixError(400, 'M_INVALID_USERNAME', message);

export const roomInUse = (message = 'Room alias already taken'): MatrixError =>
  new MatrixError(400, 'M_ROOM_IN_USE', message);

export const unsupportedRoomVersion = (message: string): MatrixError =>
  new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', message);

export const incompatibleRoomVersion = (roomVersion: string, message?: string): MatrixError =>
  new MatrixError(
    400,
    'M_INCOMPATIBLE_ROOM_VERSION',
    message ?? `This server does not support room version ${roomVersion}`,
    { room_version: roomVersion },
  );

export const invalidRoomState = (message: string): MatrixError =>
  new MatrixError(400, 'M_INVALID_ROOM_STATE', message);

export const userDeactivated = (message = 'This account has been deactivated'): MatrixError =>
  new MatrixError(403, 'M_USER_DEACTIVATED', message);

/** UIA and login failures use 401 M_UNAUTHORIZED / M_FORBIDDEN; this is the former. */
export const unauthorized = (message: string): MatrixError => new MatrixError(401, 'M_UNAUTHORIZED', message);

/** Any other spec or namespaced code, e.g. `matrixError(400, 'M_EXCLUSIVE', '…')`. */
export const matrixError = (status: number, errcode: string, message: string, extra?: JsonObject) =>
  new MatrixError(status, errcode, message, extra);
