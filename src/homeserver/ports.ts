/**
 * What the homeserver needs from the world outside this server, declared here and
 * implemented elsewhere (DESIGN.md "Seams"; STYLE.md §4: the trait lives beside the service
 * that uses it). The homeserver never imports `src/federation/` or a transport: it is
 * handed these by `createHomeserver`. Without federation, each answers "federation is off".
 */

/**
 * Other servers' signing keys (server-server-api.md "Retrieving server keys"). Used by the
 * accept pipeline to check the signatures of every event not built here.
 */
export interface KeyStore {
  /**
   * The ed25519 public keys of `serverName` with the given key IDs (`ed25519:abc`) that were
   * valid at `validAt` (ms since the epoch; `old_verify_keys` count up to their `expired_ts`).
   * Keys that cannot be found are absent from the answer; it never throws for a missing key.
   */
  verifyKeys(
    serverName: string,
    keyIds: readonly string[],
    validAt: number,
  ): Promise<Map<string, Uint8Array>>;
}
