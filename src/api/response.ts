/**
 * JSON responses, and the one place a thrown value becomes an HTTP response
 * (client-server-api/_index.md "Standard error response"). Anything that is not a
 * `MatrixError` is a bug on our side: it becomes `500 M_UNKNOWN` with a fixed message (the
 * original text may hold internals) and a log line.
 */
import type { JsonValue } from '../core/canonical-json.ts';
import type { Logger } from '../homeserver/context.ts';
import { isMatrixError, unknownError } from '../homeserver/errors.ts';

export const JSON_HEADERS: Readonly<Record<string, string>> = { 'Content-Type': 'application/json' };

/** Serialise a JSON body with the spec's mandatory content type. */
export function jsonResponse(
  body: JsonValue | object,
  status = 200,
  headers?: Record<string, string>,
): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...JSON_HEADERS, ...headers } });
}

/**
 * Map any thrown value to a Matrix error response. A `MatrixError` is shown as it is;
 * anything else is logged in full and shown only as `500 M_UNKNOWN "Internal server error"`,
 * because its message may carry storage paths, stack fragments or another user's data.
 */
export function toResponse(err: unknown, logger?: Pick<Logger, 'error'>): Response {
  if (isMatrixError(err)) {
    return jsonResponse(err.toJSON(), err.status, err.headers);
  }
  // The stack says where; a log line must be text whatever the logger does with fields.
  logger?.error('unexpected error while handling a request', {
    error: err instanceof Error ? (err.stack ?? String(err)) : String(err),
  });
  return jsonResponse(unknownError().toJSON(), 500);
}
