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

/**
 * Media that lives on another server (`mxc://other.server/…`), for the download and thumbnail
 * endpoints (client-server-api "Content repository": the local server fetches remote content
 * for its clients). Federation implements it over `/_matrix/federation/v1/media/download`;
 * without it, remote media answers 404 M_NOT_FOUND.
 */
export interface RemoteMediaPort {
  /**
   * The content and its type, or null when the origin does not have it. Waits at most
   * `timeoutMs`. Throws `MatrixError`s for the client (502 M_TOO_LARGE for content past the
   * limit, 504 when the origin does not answer in time).
   */
  fetchMedia(
    serverName: string,
    mediaId: string,
    options: { timeoutMs: number; maxBytes: number },
  ): Promise<{ contentType: string; uploadName: string | null; data: Blob | Uint8Array } | null>;
}
