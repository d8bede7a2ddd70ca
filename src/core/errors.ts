/**
 * Errors raised by the pure protocol core. Each carries a stable `code` so callers
 * (the HTTP layer, federation) can map it to a Matrix errcode without parsing text,
 * and a `name` so it survives structured cloning across postMessage.
 */
export type CoreErrorCode =
  /** An identifier does not follow the spec grammar or is too long. */
  | 'INVALID_ID'
  /** A value cannot be encoded as canonical JSON (float, out-of-range integer, lone surrogate...). */
  | 'NOT_CANONICAL'
  /** An event or field is over the spec's size limits. */
  | 'TOO_LARGE'
  /** An event is missing a field, or a field has the wrong type. */
  | 'BAD_EVENT'
  /** A signature or hash is missing or does not verify. */
  | 'BAD_SIGNATURE'
  /** A key or base64 string is malformed. */
  | 'BAD_KEY'
  /** A room version this core does not know. */
  | 'UNSUPPORTED_ROOM_VERSION';

export class CoreError extends Error {
  override readonly name = 'CoreError';
  readonly code: CoreErrorCode;

  constructor(code: CoreErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export function isCoreError(err: unknown): err is CoreError {
  return err instanceof Error && err.name === 'CoreError' && typeof (err as CoreError).code === 'string';
}
