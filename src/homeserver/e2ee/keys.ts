/**
 * Key distribution — end_to_end_encryption.md "Key management API", "Cross-signing"
 * (data/api/client-server/keys.yaml, cross_signing.yaml): device keys, one-time and
 * fallback keys, cross-signing keys and the signatures between them.
 *
 * Every signature a client uploads is checked with the core (`verifyJson`) before it is kept:
 * device keys must be signed by the device's own ed25519 key, signed one-time and fallback
 * keys by the same key, self-signing and user-signing keys by the master key, and each
 * signature uploaded later by the key it names. A device may only publish its own keys.
 */
import type { JsonObject, JsonValue } from '../../core/canonical-json.ts';
import { publicKeyFromBase64 } from '../../core/crypto.ts';
import { isValidUserId, serverNameOf } from '../../core/identifiers.ts';
import { verifyJson } from '../../core/signing.ts';
import type { Auth, HomeserverContext } from '../context.ts';
import { isLocalId } from '../context.ts';
import { badJson, invalidParam, MatrixError } from '../errors.ts';
import type { E2eeRemote } from '../ports.ts';
import { parseSyncToken } from '../tokens.ts';
import type { E2eeSyncData } from './sync-data.ts';

export const CROSS_SIGNING_TYPES = ['master', 'self_signing', 'user_signing'] as const;
export type CrossSigningType = (typeof CROSS_SIGNING_TYPES)[number];

export interface KeysService {
  /** POST /keys/upload */
  uploadKeys(
    auth: Auth,
    body: { deviceKeys?: JsonObject; oneTimeKeys?: JsonObject; fallbackKeys?: JsonObject },
  ): Promise<{ one_time_key_counts: Record<string, number> }>;
  /** POST /keys/query */
  queryKeys(requester: string, deviceKeys: Record<string, string[]>): Promise<JsonObject>;
  /** POST /keys/claim */
  claimKeys(claims: Record<string, Record<string, string>>): Promise<JsonObject>;
  /** GET /keys/changes */
  keyChanges(userId: string, from: string, to: string): Promise<{ changed: string[]; left: string[] }>;
  /** POST /keys/device_signing/upload; `confirm` runs user-interactive auth when the spec needs it. */
  uploadCrossSigningKeys(
    auth: Auth,
    keys: Partial<Record<CrossSigningType, JsonObject>>,
    confirm: () => Promise<void>,
  ): Promise<void>;
  /** POST /keys/signatures/upload */
  uploadSignatures(auth: Auth, signed: Record<string, Record<string, JsonObject>>): Promise<JsonObject>;
}

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const invalidSignature = (message: string) => new MatrixError(400, 'M_INVALID_SIGNATURE', message);

/** An object without its `signatures` and `unsigned`: what a signature covers. */
function unsignedPart(object: JsonObject): JsonObject {
  const { signatures: _s, unsigned: _u, ...rest } = object;
  return rest;
}

function sameJson(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (!isObject(a) && !Array.isArray(a)) return false;
  if (!isObject(b) && !Array.isArray(b)) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => sameJson((a as JsonObject)[k], (b as JsonObject)[k]));
}

/** Checks `object` carries a valid signature of `userId` by the ed25519 key `keyId` (`ed25519:…`), public key base64 `publicKey`. */
async function checkSigned(object: JsonObject, userId: string, keyId: string, publicKey: string) {
  let key: Uint8Array;
  try {
    key = publicKeyFromBase64(publicKey);
  } catch {
    throw invalidSignature(`${keyId} is not an ed25519 public key`);
  }
  const signature = (object.signatures as JsonObject | undefined)?.[userId];
  if (!isObject(signature) || typeof signature[keyId] !== 'string')
    throw invalidSignature(`not signed by ${userId}'s ${keyId}`);
  try {
    // Only this key's signature: others (a user's other keys) are checked where they are known.
    await verifyJson({ ...object, signatures: { [userId]: { [keyId]: signature[keyId] } } }, userId, {
      [keyId]: key,
    });
  } catch {
    throw invalidSignature(`the signature by ${userId}'s ${keyId} does not verify`);
  }
}

/** The one ed25519 public key of a cross-signing key, `[keyId, base64]`. */
function crossSigningPublicKey(key: JsonObject): [string, string] | null {
  const keys = key.keys;
  if (!isObject(keys)) return null;
  const entries = Object.entries(keys);
  if (entries.length !== 1) return null;
  const [keyId, value] = entries[0] as [string, JsonValue];
  if (!keyId.startsWith('ed25519:') || typeof value !== 'string' || keyId.slice(8) !== value) return null;
  return [keyId, value];
}

/** A device's ed25519 key from its device keys. */
function deviceSigningKey(keys: JsonObject, deviceId: string): string | null {
  const value = isObject(keys.keys) ? keys.keys[`ed25519:${deviceId}`] : undefined;
  return typeof value === 'string' ? value : null;
}

/** Splits `algorithm:key_id` key names; a name without a colon is the client's mistake. */
function splitKeyName(name: string, field: string): { algorithm: string; keyId: string } {
  const at = name.indexOf(':');
  if (at <= 0 || at === name.length - 1)
    throw badJson(`${field} key names are algorithm:key_id, got ${JSON.stringify(name)}`);
  return { algorithm: name.slice(0, at), keyId: name.slice(at + 1) };
}

export interface KeysDeps {
  remote: E2eeRemote;
  syncData: E2eeSyncData;
  /** Tells waiting syncs and federation that a user's keys changed. */
  keysChanged(userId: string): Promise<void>;
}

export function createKeysService(ctx: HomeserverContext, deps: KeysDeps): KeysService {
  const { store, config, logger } = ctx;
  const { remote } = deps;

  /** Own device keys to check a one-time/fallback key's signature with: uploaded now or stored. */
  async function ownDeviceKey(
    auth: Auth & { deviceId: string },
    uploaded?: JsonObject,
  ): Promise<string | null> {
    if (uploaded) return deviceSigningKey(uploaded, auth.deviceId);
    const [stored] = await store.e2ee.getDeviceKeys([{ userId: auth.userId, deviceIds: [auth.deviceId] }]);
    return stored ? deviceSigningKey(stored.keys, auth.deviceId) : null;
  }

  async function checkDeviceKeys(auth: Auth & { deviceId: string }, keys: JsonObject): Promise<void> {
    if (keys.user_id !== auth.userId || keys.device_id !== auth.deviceId) {
      // A device publishes only its own keys: another device's would let it impersonate that one.
      throw invalidParam('device_keys must be for the device of the access token (user_id, device_id)');
    }
    if (!Array.isArray(keys.algorithms) || !keys.algorithms.every((a) => typeof a === 'string'))
      throw badJson('device_keys.algorithms must be an array of strings');
    if (!isObject(keys.keys) || !Object.values(keys.keys).every((k) => typeof k === 'string'))
      throw badJson('device_keys.keys must be an object of strings');
    const signing = deviceSigningKey(keys, auth.deviceId);
    if (signing === null) throw badJson(`device_keys.keys must hold ed25519:${auth.deviceId}`);
    await checkSigned(keys, auth.userId, `ed25519:${auth.deviceId}`, signing);
  }

  /** One-time or fallback keys of the upload, their signatures checked when they are signed. */
  async function checkKeyMap(
    auth: Auth & { deviceId: string },
    map: JsonObject,
    field: string,
    deviceKey: () => Promise<string | null>,
  ): Promise<{ algorithm: string; keyId: string; key: JsonValue }[]> {
    const out: { algorithm: string; keyId: string; key: JsonValue }[] = [];
    for (const [name, key] of Object.entries(map)) {
      const { algorithm, keyId } = splitKeyName(name, field);
      if (typeof key !== 'string' && !isObject(key))
        throw badJson(`${field}.${name} must be a key string or a signed key object`);
      if (isObject(key)) {
        if (typeof key.key !== 'string') throw badJson(`${field}.${name}.key must be a string`);
        const signing = await deviceKey();
        if (signing === null) throw invalidParam(`upload device_keys before signed ${field}`);
        await checkSigned(key, auth.userId, `ed25519:${auth.deviceId}`, signing);
      }
      out.push({ algorithm, keyId, key });
    }
    return out;
  }

  /** Signatures on a user's keys (`key_signatures`), grouped by the key they sign. */
  async function signaturesOn(userId: string, requester: string) {
    const byKey = new Map<string, Record<string, Record<string, string>>>();
    for (const s of await store.e2ee.getSignatures(userId)) {
      // A user-signing key's signature on another user's master key is shown to its signer only
      // (cross_signing.yaml: "the user-signing signatures … only visible to the user who created them").
      if (s.signerUserId !== userId && s.signerUserId !== requester) continue;
      const entry = byKey.get(s.keyId) ?? {};
      entry[s.signerUserId] = { ...entry[s.signerUserId], [s.signerKeyId]: s.signature };
      byKey.set(s.keyId, entry);
    }
    return byKey;
  }

  function withSignatures(
    object: JsonObject,
    extra: Record<string, Record<string, string>> | undefined,
  ): JsonObject {
    if (!extra) return object;
    const signatures: Record<string, Record<string, string>> = {};
    for (const [who, sigs] of Object.entries(isObject(object.signatures) ? object.signatures : {}))
      if (isObject(sigs)) signatures[who] = { ...(sigs as Record<string, string>) };
    for (const [who, sigs] of Object.entries(extra)) signatures[who] = { ...signatures[who], ...sigs };
    return { ...object, signatures };
  }

  function groupByServer<T>(map: Record<string, T>): Map<string, Record<string, T>> {
    const out = new Map<string, Record<string, T>>();
    for (const [userId, value] of Object.entries(map)) {
      let server: string | undefined;
      try {
        server = userId.startsWith('@') ? serverNameOf(userId) : undefined;
      } catch {
        // Not a user ID: nobody's keys to give.
      }
      if (server === undefined) continue;
      const group = out.get(server) ?? {};
      group[userId] = value;
      out.set(server, group);
    }
    return out;
  }

  const federationOff = { error: 'This server does not federate yet' };

  return {
    async uploadKeys(auth, body) {
      const { deviceId } = auth;
      if (deviceId === null) throw invalidParam('Keys belong to a device; this access token has none');
      const device = { ...auth, deviceId };
      let changed = false;
      if (body.deviceKeys) {
        await checkDeviceKeys(device, body.deviceKeys);
        const [stored] = await store.e2ee.getDeviceKeys([{ userId: auth.userId, deviceIds: [deviceId] }]);
        // Clients upload their keys again after a restart: the same keys change nothing.
        if (!stored || !sameJson(stored.keys, body.deviceKeys)) {
          await store.e2ee.putDeviceKeys(auth.userId, deviceId, body.deviceKeys);
          changed = true;
        }
      }
      let known: Promise<string | null> | undefined;
      const deviceKey = () => {
        known ??= ownDeviceKey(device, body.deviceKeys);
        return known;
      };
      if (body.oneTimeKeys) {
        const keys = await checkKeyMap(device, body.oneTimeKeys, 'one_time_keys', deviceKey);
        if (keys.length > 0) await store.e2ee.addOneTimeKeys(auth.userId, deviceId, keys);
      }
      if (body.fallbackKeys) {
        const keys = await checkKeyMap(device, body.fallbackKeys, 'fallback_keys', deviceKey);
        // One fallback key per algorithm: the last of an upload replaces the stored one.
        for (const key of keys) await store.e2ee.putFallbackKey(auth.userId, deviceId, key);
      }
      if (changed) await deps.keysChanged(auth.userId);
      const counts = await deps.syncData.keyCounts(auth.userId, deviceId);
      return { one_time_key_counts: counts.oneTimeKeyCounts };
    },

    async queryKeys(requester, deviceKeys) {
      const device_keys: Record<string, Record<string, JsonObject>> = {};
      const master_keys: Record<string, JsonObject> = {};
      const self_signing_keys: Record<string, JsonObject> = {};
      const user_signing_keys: Record<string, JsonObject> = {};
      const failures: Record<string, JsonObject> = {};
      const local: Record<string, string[]> = {};
      for (const [server, group] of groupByServer(deviceKeys)) {
        if (server === config.serverName) {
          Object.assign(local, group);
          continue;
        }
        try {
          const answer = await remote.queryKeys(server, group);
          for (const [field, target] of [
            ['device_keys', device_keys],
            ['master_keys', master_keys],
            ['self_signing_keys', self_signing_keys],
          ] as const) {
            const part = answer[field];
            if (!isObject(part)) continue;
            for (const [userId, value] of Object.entries(part)) {
              // A server answers for its own users only.
              if (isObject(value) && group[userId] !== undefined)
                (target as Record<string, JsonValue>)[userId] = value;
            }
          }
        } catch (err) {
          logger.debug('remote key query failed', { server, error: String(err) });
          failures[server] = federationOff;
        }
      }
      for (const [userId, deviceIds] of Object.entries(local)) {
        const [keys, devices, crossSigning, signatures] = await Promise.all([
          store.e2ee.getDeviceKeys([{ userId, deviceIds }]),
          store.accounts.listDevices(userId),
          store.e2ee.getCrossSigningKeys(userId),
          signaturesOn(userId, requester),
        ]);
        const names = new Map(devices.map((d) => [d.deviceId, d.displayName]));
        const mine: Record<string, JsonObject> = {};
        for (const k of keys) {
          let object = withSignatures(k.keys, signatures.get(k.deviceId));
          const name = names.get(k.deviceId);
          if (name) object = { ...object, unsigned: { device_display_name: name } };
          mine[k.deviceId] = object;
        }
        device_keys[userId] = mine;
        for (const [type, target] of [
          ['master', master_keys],
          ['self_signing', self_signing_keys],
          ['user_signing', user_signing_keys],
        ] as const) {
          const key = crossSigning[type];
          if (!key) continue;
          // Only the user may see their user-signing key (cross_signing.yaml, keys.yaml).
          if (type === 'user_signing' && userId !== requester) continue;
          const pub = crossSigningPublicKey(key);
          target[userId] = withSignatures(key, pub ? signatures.get(pub[1]) : undefined);
        }
      }
      return { device_keys, master_keys, self_signing_keys, user_signing_keys, failures };
    },

    async claimKeys(claims) {
      const one_time_keys: Record<string, Record<string, Record<string, JsonValue>>> = {};
      const failures: Record<string, JsonObject> = {};
      for (const [server, group] of groupByServer(claims)) {
        if (server !== config.serverName) {
          try {
            const answer = await remote.claimKeys(server, group);
            const keys = answer.one_time_keys;
            if (isObject(keys))
              for (const [userId, value] of Object.entries(keys))
                if (isObject(value) && group[userId] !== undefined)
                  one_time_keys[userId] = value as Record<string, Record<string, JsonValue>>;
          } catch (err) {
            logger.debug('remote key claim failed', { server, error: String(err) });
            failures[server] = federationOff;
          }
          continue;
        }
        const wanted = Object.entries(group).flatMap(([userId, devices]) =>
          Object.entries(devices).map(([deviceId, algorithm]) => ({ userId, deviceId, algorithm })),
        );
        for (const k of await store.e2ee.claimKeys(wanted)) {
          const algorithm = group[k.userId]?.[k.deviceId];
          const user = one_time_keys[k.userId] ?? {};
          user[k.deviceId] = { ...user[k.deviceId], [`${algorithm}:${k.keyId}`]: k.key };
          one_time_keys[k.userId] = user;
        }
      }
      return { one_time_keys, failures };
    },

    async keyChanges(userId, from, to) {
      const since = parseSyncToken(from);
      const until = parseSyncToken(to);
      if (!since) throw invalidParam('"from" is not a sync token of this server');
      if (!until) throw invalidParam('"to" is not a sync token of this server');
      const now = (await store.positions()).deviceLists;
      return deps.syncData.deviceListChanges(
        userId,
        Math.min(since.deviceLists, now),
        Math.min(until.deviceLists, now),
      );
    },

    async uploadCrossSigningKeys(auth, keys, confirm) {
      const stored = await store.e2ee.getCrossSigningKeys(auth.userId);
      const given = CROSS_SIGNING_TYPES.filter((t) => keys[t] !== undefined);
      for (const type of given) {
        const key = keys[type] as JsonObject;
        if (key.user_id !== auth.userId) throw invalidParam(`${type}_key.user_id must be ${auth.userId}`);
        if (!Array.isArray(key.usage) || !key.usage.includes(type))
          throw invalidParam(`${type}_key.usage must include "${type}"`);
        if (!crossSigningPublicKey(key))
          throw invalidParam(`${type}_key.keys must hold exactly one ed25519:<public key> entry`);
      }
      const master = keys.master ?? stored.master;
      const masterKey = master ? crossSigningPublicKey(master) : null;
      for (const type of ['self_signing', 'user_signing'] as const) {
        const key = keys[type];
        if (!key) continue;
        if (!masterKey) throw invalidParam(`upload a master key before a ${type} key`);
        await checkSigned(key, auth.userId, masterKey[0], masterKey[1]);
      }
      // cross_signing.yaml: no UIA for the first master key, nor for the very keys already stored.
      const unchanged = given.every((t) => stored[t] !== undefined && sameJson(stored[t], keys[t]));
      if (stored.master !== undefined && !unchanged) await confirm();
      if (unchanged && given.length > 0) return;
      for (const type of given)
        await store.e2ee.putCrossSigningKey(auth.userId, type, keys[type] as JsonObject);
      if (given.length > 0) await deps.keysChanged(auth.userId);
    },

    async uploadSignatures(auth, signed) {
      const failures: Record<string, Record<string, JsonObject>> = {};
      const fail = (userId: string, keyId: string, err: unknown) => {
        const e = err instanceof MatrixError ? err : invalidSignature(String(err));
        failures[userId] = { ...failures[userId], [keyId]: { errcode: e.errcode, error: e.message } };
      };
      const own = await store.e2ee.getCrossSigningKeys(auth.userId);
      const ownKey = (type: CrossSigningType) => {
        const key = own[type];
        return key ? crossSigningPublicKey(key) : null;
      };
      const kept: Parameters<typeof store.e2ee.putSignatures>[0][number][] = [];
      const touched = new Set<string>();
      for (const [userId, objects] of Object.entries(signed)) {
        if (!isValidUserId(userId, { historical: true }) || !isLocalId(config, userId)) {
          for (const keyId of Object.keys(objects))
            fail(userId, keyId, invalidParam('Not a user of this server'));
          continue;
        }
        const [theirCross, theirDevices] = await Promise.all([
          userId === auth.userId ? Promise.resolve(own) : store.e2ee.getCrossSigningKeys(userId),
          store.e2ee.getDeviceKeys([{ userId, deviceIds: Object.keys(objects) }]),
        ]);
        const theirMaster = theirCross.master ? crossSigningPublicKey(theirCross.master) : null;
        for (const [keyId, object] of Object.entries(objects)) {
          try {
            if (!isObject(object)) throw badJson('a signed key must be an object');
            const device = theirDevices.find((d) => d.deviceId === keyId);
            let stored: JsonObject;
            let signers: [string, string][];
            if (userId === auth.userId && device) {
              // A device of one's own, signed by one's self-signing key.
              const ssk = ownKey('self_signing');
              if (!ssk) throw invalidSignature('upload a self-signing key first');
              stored = device.keys;
              signers = [ssk];
            } else if (theirMaster && keyId === theirMaster[1]) {
              stored = theirCross.master as JsonObject;
              if (userId === auth.userId) {
                // One's own master key, signed by one's devices.
                const sigs = (object.signatures as JsonObject | undefined)?.[auth.userId];
                const deviceIds = isObject(sigs)
                  ? Object.keys(sigs)
                      .filter((k) => k.startsWith('ed25519:') && k !== theirMaster[0])
                      .map((k) => k.slice(8))
                  : [];
                const devices = await store.e2ee.getDeviceKeys([{ userId, deviceIds }]);
                signers = devices.flatMap((d) => {
                  const pub = deviceSigningKey(d.keys, d.deviceId);
                  return pub ? [[`ed25519:${d.deviceId}`, pub] as [string, string]] : [];
                });
              } else {
                // Another user's master key, signed by one's user-signing key.
                const usk = ownKey('user_signing');
                if (!usk) throw invalidSignature('upload a user-signing key first');
                signers = [usk];
              }
            } else {
              throw invalidParam(`${keyId} is not a known device or master key of ${userId}`);
            }
            if (!sameJson(unsignedPart(stored), unsignedPart(object)))
              throw invalidSignature('the signed object is not the key stored for it');
            if (signers.length === 0) throw invalidSignature('no signature by a key of the uploader');
            for (const [signerKeyId, pub] of signers) {
              await checkSigned(object, auth.userId, signerKeyId, pub);
              const sig = ((object.signatures as JsonObject)[auth.userId] as JsonObject)[
                signerKeyId
              ] as string;
              kept.push({ userId, keyId, signerUserId: auth.userId, signerKeyId, signature: sig });
            }
            touched.add(userId);
          } catch (err) {
            fail(userId, keyId, err);
          }
        }
      }
      if (kept.length > 0) await store.e2ee.putSignatures(kept);
      for (const userId of touched) {
        await store.e2ee.markDeviceListChanged(userId);
        await deps.keysChanged(userId);
      }
      return { failures };
    },
  };
}
