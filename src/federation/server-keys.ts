/**
 * Other servers' signing keys — server-server-api.md "Retrieving server keys".
 *
 * `createServerKeys` is the homeserver's `KeyStore` (src/homeserver/ports.ts): it answers
 * from the store's `server_keys` cache, and when a key is missing or no longer valid it
 * fetches the server's own `/_matrix/key/v2/server` (self-signed: the response must be signed
 * by a key it lists) and, failing that, asks the configured notaries through
 * `POST /_matrix/key/v2/query` (each answer signed by the server and by the notary). Every
 * response is kept whole with its keys, so this server can act as a notary itself
 * (`notaryResponses`, used by `/_matrix/key/v2/query`).
 *
 * Validity: a key in `verify_keys` is valid up to the lesser of the response's
 * `valid_until_ts` and 7 days after it was fetched (keys.yaml: "Servers MUST use the lesser
 * of this field and 7 days into the future"); a key in `old_verify_keys` is valid before its
 * `expired_ts`.
 */
import { decodeBase64 } from '../core/base64.ts';
import type { JsonObject } from '../core/canonical-json.ts';
import { ED25519_PUBLIC_KEY_BYTES, type SigningKey } from '../core/crypto.ts';
import { isValidKeyId, isValidServerName } from '../core/identifiers.ts';
import { isP2pServerName, P2P_KEY_ID, p2pVerifyKey } from '../core/p2p-identity.ts';
import { signJson, verifyJson } from '../core/signing.ts';
import type { Clock, Logger } from '../homeserver/context.ts';
import type { KeyStore } from '../homeserver/ports.ts';
import type { FederationStore, ServerKey } from '../storage/store.ts';
import type { FederationClient } from './client.ts';

/** keys.yaml `valid_until_ts`: "the lesser of this field and 7 days into the future". */
export const MAX_KEY_VALIDITY_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * How long this server's own key response says it is valid for. keys_server.yaml: "Originating
 * servers should avoid returning responses that expire in less than an hour"; a day is
 * Synapse's default `key_refresh_interval`, short enough that a rotated key is noticed soon.
 */
export const OWN_KEY_VALIDITY_MS = 24 * 60 * 60 * 1000;

/**
 * The least time between two fetches of one server's keys. keys_server.yaml: "Requesting
 * servers should limit how frequently they query for certificates"; a minute bounds the cost
 * of a stream of events signed with keys nobody can produce.
 */
export const DEFAULT_MIN_REFETCH_INTERVAL_MS = 60 * 1000;

/** Servers whose last fetch time is remembered before expired entries are swept out. */
const MAX_TRACKED_SERVERS = 10_000;

/** How long key rows read from the store answer without reading it again (`createServerKeys`). */
const KEY_ROWS_KEPT_MS = 60 * 1000;
/** Servers whose key rows are kept at once; past this the longest kept are dropped first. */
const MAX_KEPT_SERVERS = 1000;

/** A key response is small (a few keys and signatures); refuse anything like a megabyte. */
export const MAX_KEY_RESPONSE_BYTES = 1024 * 1024;

const KEY_SERVER_PATH = '/_matrix/key/v2/server';
const KEY_QUERY_PATH = '/_matrix/key/v2/query';

export interface NotaryConfig {
  serverName: string;
  /**
   * The notary's keys, pinned (`ed25519:abc` → unpadded base64). Without them the notary's
   * keys are fetched from the notary itself.
   */
  verifyKeys?: Readonly<Record<string, string>>;
}

export interface ServerKeysOptions {
  /** This server: its own keys are answered without a fetch. */
  serverName: string;
  signingKey: SigningKey;
  store: FederationStore;
  /** Sends the (unauthenticated) key requests. */
  client: FederationClient;
  clock: Clock;
  /** Asked, in order, when a server does not answer for its own keys. */
  notaries?: readonly NotaryConfig[];
  minRefetchIntervalMs?: number;
  logger?: Logger;
}

export interface ServerKeys extends KeyStore {
  /**
   * Key responses of `serverName` for a notary answer (each still signed only by its origin):
   * a cached response while it is fresh and valid until at least `minimumValidUntil`, else a
   * new fetch, else — "If the server fails to respond … continue to return the last response
   * they received" — the last one cached. Empty when nothing is known.
   */
  notaryResponses(serverName: string, minimumValidUntil: number): Promise<JsonObject[]>;
}

/** This server's signed `/_matrix/key/v2/server` response at `now`. */
export function ownKeyResponse(serverName: string, signingKey: SigningKey, now: number): Promise<JsonObject> {
  return signJson(
    {
      server_name: serverName,
      verify_keys: { [signingKey.keyId]: { key: signingKey.publicKeyBase64 } },
      // This server has never rotated its key; a rotation would list the old one here.
      old_verify_keys: {},
      valid_until_ts: now + OWN_KEY_VALIDITY_MS,
    },
    serverName,
    signingKey,
  ) as Promise<JsonObject>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isTimestamp = (value: unknown): value is number =>
  Number.isSafeInteger(value) && (value as number) >= 0;

function readPublicKey(value: unknown): Uint8Array | undefined {
  if (!isObject(value) || typeof value.key !== 'string') return undefined;
  try {
    const bytes = decodeBase64(value.key);
    return bytes.length === ED25519_PUBLIC_KEY_BYTES ? bytes : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks a key response claimed to be `serverName`'s (keys.yaml: `server_name`,
 * `verify_keys`, `valid_until_ts` and `signatures` required) and its self-signature, and
 * returns the keys it carries as cache rows. Keys that are not ed25519 or not well formed
 * are skipped; a response with no usable current key, or not signed by one, is refused.
 * Throws `Error` with the reason.
 */
export async function checkKeyResponse(
  response: unknown,
  serverName: string,
  fetchedAt: number,
): Promise<ServerKey[]> {
  if (!isObject(response)) throw new Error('the key response is not an object');
  if (response.server_name !== serverName) {
    throw new Error(`the key response is for ${String(response.server_name)}, not ${serverName}`);
  }
  if (!isTimestamp(response.valid_until_ts)) throw new Error('valid_until_ts is not a timestamp');
  if (!isObject(response.verify_keys)) throw new Error('verify_keys is not an object');
  const current = new Map<string, Uint8Array>();
  const rows: ServerKey[] = [];
  const base = {
    serverName,
    validUntil: response.valid_until_ts,
    fetchedAt,
    response: response as JsonObject,
  };
  for (const [keyId, value] of Object.entries(response.verify_keys)) {
    const key = readPublicKey(value);
    if (!keyId.startsWith('ed25519:') || !isValidKeyId(keyId, { server: true }) || !key) continue;
    current.set(keyId, key);
    rows.push({ ...base, keyId, key: (value as { key: string }).key, expiredAt: null });
  }
  if (current.size === 0) throw new Error('the key response has no ed25519 verify key');
  if (response.old_verify_keys !== undefined) {
    if (!isObject(response.old_verify_keys)) throw new Error('old_verify_keys is not an object');
    for (const [keyId, value] of Object.entries(response.old_verify_keys)) {
      const key = readPublicKey(value);
      const expiredAt = isObject(value) ? value.expired_ts : undefined;
      if (!keyId.startsWith('ed25519:') || !isValidKeyId(keyId, { server: true }) || !key) continue;
      if (!isTimestamp(expiredAt) || current.has(keyId)) continue;
      rows.push({ ...base, keyId, key: (value as { key: string }).key, expiredAt });
    }
  }
  // "Digital signatures for this object signed using the verify_keys": every signature by a
  // listed key must verify, and there must be one.
  await verifyJson(response, serverName, current);
  return rows;
}

/** Whether a cached key may check a signature made at `validAt`. */
export function keyValidAt(key: ServerKey, validAt: number): boolean {
  if (key.expiredAt !== null) return validAt < key.expiredAt;
  return validAt <= Math.min(key.validUntil, key.fetchedAt + MAX_KEY_VALIDITY_MS);
}

export function createServerKeys(options: ServerKeysOptions): ServerKeys {
  const { store, client, clock, serverName: self, signingKey } = options;
  const notaries = options.notaries ?? [];
  const minInterval = options.minRefetchIntervalMs ?? DEFAULT_MIN_REFETCH_INTERVAL_MS;
  const logger = options.logger;
  /** When each server's keys were last fetched (successfully or not): the fetch rate limit. */
  const lastFetch = new Map<string, number>();
  /** One fetch per server at a time; concurrent callers share it. */
  const inFlight = new Map<string, Promise<boolean>>();
  /**
   * Key rows read from the store, per server, kept `KEY_ROWS_KEPT_MS` by the clock: a
   * transaction of 50 events from one server reads its keys once, not once an event. They
   * answer only when every asked key is there and valid; anything less reads the store
   * again. The store stays the truth: a write here drops the server's rows.
   */
  const keptRows = new Map<string, { readAt: number; rows: Map<string, ServerKey> }>();

  async function storedKeys(serverName: string, keyIds: readonly string[]): Promise<ServerKey[]> {
    const rows = await store.getServerKeys(serverName, keyIds);
    if (keptRows.size >= MAX_KEPT_SERVERS) keptRows.delete(keptRows.keys().next().value as string);
    const now = clock.now();
    let kept = keptRows.get(serverName);
    if (!kept || now - kept.readAt >= KEY_ROWS_KEPT_MS) {
      kept = { readAt: now, rows: new Map() };
      keptRows.set(serverName, kept);
    }
    for (const row of rows) kept.rows.set(row.keyId, row);
    return rows;
  }

  /** The kept rows of every key in `keyIds` when each is valid at `validAt`, else undefined. */
  function keptValidKeys(
    serverName: string,
    keyIds: readonly string[],
    validAt: number,
  ): Map<string, Uint8Array> | undefined {
    const kept = keptRows.get(serverName);
    if (!kept || clock.now() - kept.readAt >= KEY_ROWS_KEPT_MS) return undefined;
    const rows: ServerKey[] = [];
    for (const keyId of keyIds) {
      const row = kept.rows.get(keyId);
      if (!row || !keyValidAt(row, validAt)) return undefined;
      rows.push(row);
    }
    const found = validKeys(rows, validAt);
    return found.size === keyIds.length ? found : undefined;
  }

  /** Stores fetched keys; a key once seen in `old_verify_keys` never becomes current again. */
  async function remember(rows: ServerKey[]): Promise<void> {
    if (rows.length === 0) return;
    const serverName = (rows[0] as ServerKey).serverName;
    const known = new Map(
      (
        await store.getServerKeys(
          serverName,
          rows.map((r) => r.keyId),
        )
      ).map((k) => [k.keyId, k]),
    );
    const merged = rows.map((row) => {
      const before = known.get(row.keyId);
      if (before?.expiredAt != null && row.expiredAt === null) return { ...row, expiredAt: before.expiredAt };
      return row;
    });
    await store.putServerKeys(merged);
    keptRows.delete(serverName);
  }

  async function fetchDirect(serverName: string): Promise<ServerKey[]> {
    const response = await client.request(serverName, {
      method: 'GET',
      target: KEY_SERVER_PATH,
      sign: false,
      maxResponseBytes: MAX_KEY_RESPONSE_BYTES,
    });
    return checkKeyResponse(response, serverName, clock.now());
  }

  /** The notary's own keys: pinned, or fetched from it directly (never through a notary). */
  async function notaryKeys(notary: NotaryConfig, keyIds: string[]): Promise<Map<string, Uint8Array>> {
    if (notary.verifyKeys) {
      const pinned = new Map<string, Uint8Array>();
      for (const [keyId, key] of Object.entries(notary.verifyKeys)) {
        const bytes = readPublicKey({ key });
        if (bytes) pinned.set(keyId, bytes);
      }
      return pinned;
    }
    const now = clock.now();
    const cached = await store.getServerKeys(notary.serverName, keyIds);
    const valid = new Map(
      cached
        .filter((k) => k.expiredAt === null && keyValidAt(k, now))
        .map((k) => [k.keyId, decodeBase64(k.key)]),
    );
    if (keyIds.every((id) => valid.has(id))) return valid;
    const rows = await fetchDirect(notary.serverName);
    await remember(rows);
    return new Map(rows.filter((k) => k.expiredAt === null).map((k) => [k.keyId, decodeBase64(k.key)]));
  }

  async function fetchThroughNotary(
    notary: NotaryConfig,
    serverName: string,
    keyIds: readonly string[],
    minimumValidUntil: number,
  ): Promise<ServerKey[]> {
    const criteria: JsonObject = {};
    for (const keyId of keyIds) criteria[keyId] = { minimum_valid_until_ts: minimumValidUntil };
    const answer = await client.request(notary.serverName, {
      method: 'POST',
      target: KEY_QUERY_PATH,
      body: { server_keys: { [serverName]: criteria } },
      sign: false,
      maxResponseBytes: MAX_KEY_RESPONSE_BYTES,
    });
    if (!Array.isArray(answer.server_keys))
      throw new Error(`${notary.serverName}: server_keys is not an array`);
    const rows: ServerKey[] = [];
    for (const item of answer.server_keys) {
      // A notary may answer for other servers too; only the one asked about is taken.
      if (!isObject(item) || item.server_name !== serverName) continue;
      const signatures = isObject(item.signatures) ? item.signatures[notary.serverName] : undefined;
      const notaryKeyIds = isObject(signatures)
        ? Object.keys(signatures).filter((id) => id.startsWith('ed25519:'))
        : [];
      if (notaryKeyIds.length === 0) throw new Error(`${notary.serverName} did not sign its answer`);
      await verifyJson(item, notary.serverName, await notaryKeys(notary, notaryKeyIds));
      // The notary's signature is no part of the origin's: checked, then dropped, so the
      // stored response is the origin's own.
      const { [notary.serverName]: _notary, ...originSignatures } = item.signatures as Record<
        string,
        unknown
      >;
      const original = { ...item, signatures: originSignatures } as JsonObject;
      rows.push(...(await checkKeyResponse(original, serverName, clock.now())));
    }
    return rows;
  }

  /**
   * Fetches `serverName`'s keys — directly, then through each notary — and stores them.
   * Resolves whether anything was stored. Rate-limited per server; never throws.
   */
  function refresh(serverName: string, keyIds: readonly string[], validAt: number): Promise<boolean> {
    const running = inFlight.get(serverName);
    if (running) return running;
    const last = lastFetch.get(serverName);
    const now = clock.now();
    if (last !== undefined && now - last < minInterval) return Promise.resolve(false);
    if (lastFetch.size >= MAX_TRACKED_SERVERS) {
      // Any caller can name any origin: forget the attempts that no longer limit anything.
      for (const [name, at] of lastFetch) if (now - at >= minInterval) lastFetch.delete(name);
    }
    lastFetch.set(serverName, now);
    const attempt = (async () => {
      try {
        await remember(await fetchDirect(serverName));
        return true;
      } catch (err) {
        logger?.info('server keys: direct fetch failed', { serverName, error: String(err) });
      }
      for (const notary of notaries) {
        if (notary.serverName === serverName || notary.serverName === self) continue;
        try {
          const rows = await fetchThroughNotary(notary, serverName, keyIds, validAt);
          if (rows.length > 0) {
            await remember(rows);
            return true;
          }
        } catch (err) {
          logger?.info('server keys: notary fetch failed', {
            serverName,
            notary: notary.serverName,
            error: String(err),
          });
        }
      }
      return false;
    })().finally(() => inFlight.delete(serverName));
    inFlight.set(serverName, attempt);
    return attempt;
  }

  function validKeys(rows: ServerKey[], validAt: number): Map<string, Uint8Array> {
    const out = new Map<string, Uint8Array>();
    for (const row of rows) {
      if (!keyValidAt(row, validAt)) continue;
      try {
        out.set(row.keyId, decodeBase64(row.key));
      } catch {
        // A corrupt cache row counts as missing; the next fetch overwrites it.
      }
    }
    return out;
  }

  return {
    async verifyKeys(serverName, keyIds, validAt) {
      if (serverName === self) {
        const own = new Map<string, Uint8Array>();
        if (keyIds.includes(signingKey.keyId)) own.set(signingKey.keyId, signingKey.publicKey);
        return own;
      }
      if (keyIds.length === 0 || !isValidServerName(serverName)) return new Map();
      if (isP2pServerName(serverName)) {
        // A P2P server's one key is its name (core/p2p-identity.ts): nothing to fetch or cache.
        const key = p2pVerifyKey(serverName);
        return key && keyIds.includes(P2P_KEY_ID) ? new Map([[P2P_KEY_ID, key]]) : new Map();
      }
      const kept = keptValidKeys(serverName, keyIds, validAt);
      if (kept) return kept;
      let found = validKeys(await storedKeys(serverName, keyIds), validAt);
      const missing = keyIds.filter((id) => !found.has(id));
      if (missing.length === 0) return found;
      if (await refresh(serverName, missing, validAt)) {
        found = validKeys(await storedKeys(serverName, keyIds), validAt);
      }
      return found;
    },

    async notaryResponses(serverName, minimumValidUntil) {
      const now = clock.now();
      if (serverName === self) return [await ownKeyResponse(self, signingKey, now)];
      // A P2P server's key is its name: nobody needs a notary for it, and none is fetched.
      if (!isValidServerName(serverName) || isP2pServerName(serverName)) return [];
      const latest = (rows: ServerKey[]) =>
        rows
          .filter((k) => k.response !== undefined)
          .reduce<ServerKey | undefined>(
            (a, b) => (a === undefined || b.fetchedAt > a.fetchedAt ? b : a),
            undefined,
          );
      let newest = latest(await store.getServerKeys(serverName));
      const usable = (k: ServerKey | undefined) => {
        if (!k) return false;
        const validUntil = k.response?.valid_until_ts as number;
        // keys_server.yaml: "Intermediate notary servers should cache a response for half of
        // its lifetime to avoid serving a stale response."
        const freshUntil = k.fetchedAt + (validUntil - k.fetchedAt) / 2;
        return validUntil >= minimumValidUntil && now < freshUntil;
      };
      if (!usable(newest) && (await refresh(serverName, [], minimumValidUntil))) {
        newest = latest(await store.getServerKeys(serverName));
      }
      if (!newest?.response) return [];
      // Several rows carry the same response; one copy is enough.
      return [newest.response];
    },
  };
}
