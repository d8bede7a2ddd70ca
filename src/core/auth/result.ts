/** The outcome of an authorization check: allowed, or rejected with the rule that failed. */
export type AuthResult = { ok: true } | { ok: false; reason: string };

/**
 * Thrown inside the rule implementations to reject with a reason, and caught by `checkAuth`,
 * which turns it into `{ ok: false, reason }`. It never leaves the auth module.
 */
export class AuthDenied extends Error {
  override readonly name = 'AuthDenied';
}

export function deny(reason: string): never {
  throw new AuthDenied(reason);
}
