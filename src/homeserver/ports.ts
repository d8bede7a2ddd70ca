/**
 * What the homeserver needs from the world outside this server, declared here and
 * implemented elsewhere (DESIGN.md "Seams"; STYLE.md §4: the trait lives beside the service
 * that uses it). The homeserver never imports `src/federation/` or a transport: it is
 * handed these by `createHomeserver`. Without federation, each answers "federation is off".
 */

import type { JsonObject } from '../core/canonical-json.ts';

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
 * What end-to-end encryption needs from other servers (server-server-api.md "End-to-End
 * Encryption", "Send-to-device messaging", "Device Management"). The local side calls these
 * where federation plugs in; without federation (`e2eeRemoteOff`) a remote user's keys are
 * reported as failures and to-device messages for them are dropped with a warning.
 */
export interface E2eeRemote {
  /** `POST /_matrix/federation/v1/user/keys/query` to `destination`; its `device_keys`, cross-signing keys. */
  queryKeys(destination: string, deviceKeys: Record<string, string[]>): Promise<JsonObject>;
  /** `POST /_matrix/federation/v1/user/keys/claim` to `destination`; its `one_time_keys`. */
  claimKeys(destination: string, claims: Record<string, Record<string, string>>): Promise<JsonObject>;
  /** Queues an `m.direct_to_device` EDU for `destination` (the federation outbox owns retries). */
  sendToDevice(
    destination: string,
    edu: {
      sender: string;
      type: string;
      messageId: string;
      messages: Record<string, Record<string, JsonObject>>;
    },
  ): Promise<void>;
  /**
   * A local user's devices or cross-signing keys changed: the servers sharing a room with
   * them are owed an `m.device_list_update` / `m.signing_key_update` EDU.
   */
  deviceListChanged(userId: string): Promise<void>;
}
