/**
 * What other servers may ask this one about its users, aliases and rooms — server-server-api.md
 * "Querying for information", "Device Management", "End-to-End Encryption", "Public Room
 * Directory" and "Spaces". Read-only over the store (the E2EE area, aliases, room state), and
 * only ever about what is ours: another server's user or alias is that server's to answer.
 *
 * Kept apart from the client E2EE service built in parallel: this reads what that one writes,
 * the same rows, and answers in the federation's shapes (no `user_signing_keys`, `stream_id`).
 */
import type { JsonObject, JsonValue } from '../../core/canonical-json.ts';
import { isValidRoomId, isValidUserId, parseRoomAlias, serverNameOf } from '../../core/identifiers.ts';
import type { HomeserverContext } from '../context.ts';
import { forbidden, invalidParam, notFound } from '../errors.ts';
import type { RoomsService } from '../rooms/service.ts';
import { type HierarchyRoom, loadRoomSummary } from '../rooms/summary.ts';

export interface FederationDevice {
  device_id: string;
  keys: JsonObject;
  device_display_name?: string;
}

export interface UserDevicesResponse {
  user_id: string;
  stream_id: number;
  devices: FederationDevice[];
  master_key?: JsonObject;
  self_signing_key?: JsonObject;
}

export type { HierarchyRoom };

export interface FederationQueryService {
  /** GET /query/directory: one of our aliases. */
  resolveAlias(alias: string): Promise<{ room_id: string; servers: string[] }>;
  /** GET /user/devices/{userId}. */
  userDevices(userId: string): Promise<UserDevicesResponse>;
  /** POST /user/keys/query: `{userId: [deviceId…]}`, an empty list meaning every device. */
  queryKeys(deviceKeys: Record<string, readonly string[]>): Promise<JsonObject>;
  /** POST /user/keys/claim: `{userId: {deviceId: algorithm}}`. */
  claimKeys(oneTimeKeys: Record<string, Record<string, string>>): Promise<JsonObject>;
  /** GET /hierarchy/{roomId} for `origin`. */
  hierarchy(
    origin: string,
    roomId: string,
    suggestedOnly: boolean,
  ): Promise<{ room: HierarchyRoom; children: HierarchyRoom[]; inaccessible_children: string[] }>;
}

const isObject = (x: unknown): x is JsonObject => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Join rules under which a server with no member in the room may still see it (it could join or knock). */
const OPEN_JOIN_RULES = new Set(['public', 'knock', 'restricted', 'knock_restricted']);

export function createFederationQueryService(
  ctx: HomeserverContext,
  deps: { rooms: Pick<RoomsService, 'serverAllowed'> },
): FederationQueryService {
  const { store, config } = ctx;
  const ours = (id: string) => serverNameOf(id) === config.serverName;

  /** A well-formed user ID of ours; another server's users are not ours to describe. */
  function localUser(userId: string): string {
    if (!isValidUserId(userId, { historical: true }))
      throw invalidParam(`Invalid user ID ${JSON.stringify(userId)}`);
    if (!ours(userId)) throw forbidden(`${userId} is not a user of ${config.serverName}`);
    return userId;
  }

  /** Signatures stored apart from the keys they sign (cross-signing uploads), merged back in. */
  async function withSignatures(userId: string) {
    const stored = await store.e2ee.getSignatures(userId);
    return (keys: JsonObject, keyIds: readonly string[]): JsonObject => {
      const extra = stored.filter((s) => keyIds.includes(s.keyId));
      if (extra.length === 0) return keys;
      const signatures: Record<string, Record<string, JsonValue>> = {};
      for (const [signer, sigs] of Object.entries(isObject(keys.signatures) ? keys.signatures : {})) {
        signatures[signer] = { ...(isObject(sigs) ? sigs : {}) };
      }
      for (const s of extra) {
        signatures[s.signerUserId] = { ...signatures[s.signerUserId], [s.signerKeyId]: s.signature };
      }
      return { ...keys, signatures };
    };
  }

  /** The key IDs a cross-signing key is known by: `ed25519:<pub>` and `<pub>`. */
  function crossSigningIds(key: JsonObject): string[] {
    const ids = Object.keys(isObject(key.keys) ? key.keys : {});
    return [...ids, ...ids.map((id) => id.slice(id.indexOf(':') + 1))];
  }

  async function crossSigning(userId: string): Promise<{ master?: JsonObject; selfSigning?: JsonObject }> {
    const keys = await store.e2ee.getCrossSigningKeys(userId);
    const sign = await withSignatures(userId);
    const out: { master?: JsonObject; selfSigning?: JsonObject } = {};
    if (keys.master) out.master = sign(keys.master, crossSigningIds(keys.master));
    if (keys.self_signing) out.selfSigning = sign(keys.self_signing, crossSigningIds(keys.self_signing));
    return out;
  }

  async function _roomContent(roomId: string, type: string): Promise<JsonObject | null> {
    return (await store.rooms.currentStateEvent(roomId, type, ''))?.event.content ?? null;
  }

  const summary = (roomId: string) => loadRoomSummary(store, roomId);

  /** Whether `origin` could peek or join: an open join rule, world-readable history, or a member there. */
  async function accessible(room: HierarchyRoom, origin: string): Promise<boolean> {
    if (!(await deps.rooms.serverAllowed(room.room_id, origin))) return false;
    if (room.world_readable || OPEN_JOIN_RULES.has(room.join_rule ?? '')) return true;
    const members = await store.rooms.members(room.room_id, 'join');
    return members.some((m) => serverNameOf(m.userId) === origin);
  }

  const service: FederationQueryService = {
    async resolveAlias(alias) {
      let serverName: string;
      try {
        serverName = parseRoomAlias(alias).serverName;
      } catch (err) {
        throw invalidParam(`Invalid room alias: ${(err as Error).message}`);
      }
      // Never asks onwards: another server's alias is not ours to answer.
      const found = serverName === config.serverName ? await store.rooms.getAlias(alias) : null;
      if (!found) throw notFound(`Room alias ${alias} not found`);
      return {
        room_id: found.roomId,
        servers: found.servers.length > 0 ? found.servers : [config.serverName],
      };
    },

    async userDevices(userId) {
      localUser(userId);
      const user = await store.accounts.getUser(userId);
      const { deviceLists } = await store.positions();
      if (!user || user.deactivated) return { user_id: userId, stream_id: deviceLists, devices: [] };
      const [devices, keys, cross] = await Promise.all([
        store.accounts.listDevices(userId),
        store.e2ee.getDeviceKeys([{ userId }]),
        crossSigning(userId),
      ]);
      const sign = await withSignatures(userId);
      const keysOf = new Map(keys.map((k) => [k.deviceId, k.keys]));
      const answer: UserDevicesResponse = {
        user_id: userId,
        stream_id: deviceLists,
        // "devices": those with keys (a device that never uploaded keys cannot take part in E2EE).
        devices: devices
          .filter((d) => keysOf.has(d.deviceId))
          .map((d) => ({
            device_id: d.deviceId,
            keys: sign(keysOf.get(d.deviceId) as JsonObject, [d.deviceId]),
            ...(d.displayName !== null ? { device_display_name: d.displayName } : {}),
          })),
      };
      if (cross.master) answer.master_key = cross.master;
      if (cross.selfSigning) answer.self_signing_key = cross.selfSigning;
      return answer;
    },

    async queryKeys(deviceKeys) {
      const device_keys: Record<string, Record<string, JsonObject>> = {};
      const master_keys: Record<string, JsonObject> = {};
      const self_signing_keys: Record<string, JsonObject> = {};
      for (const [userId, deviceIds] of Object.entries(deviceKeys)) {
        // Users of other servers are left out, as the client API leaves out what it cannot reach.
        if (!isValidUserId(userId, { historical: true }) || !ours(userId)) continue;
        const user = await store.accounts.getUser(userId);
        if (!user || user.deactivated) continue;
        const rows = await store.e2ee.getDeviceKeys([
          { userId, deviceIds: deviceIds.length > 0 ? deviceIds : undefined },
        ]);
        const devices = new Map((await store.accounts.listDevices(userId)).map((d) => [d.deviceId, d]));
        const sign = await withSignatures(userId);
        const mine: Record<string, JsonObject> = {};
        for (const row of rows) {
          const name = devices.get(row.deviceId)?.displayName;
          const keys = sign(row.keys, [row.deviceId]);
          const unsigned = isObject(keys.unsigned) ? keys.unsigned : {};
          mine[row.deviceId] = name
            ? { ...keys, unsigned: { ...unsigned, device_display_name: name } }
            : keys;
        }
        device_keys[userId] = mine;
        const cross = await crossSigning(userId);
        if (cross.master) master_keys[userId] = cross.master;
        if (cross.selfSigning) self_signing_keys[userId] = cross.selfSigning;
      }
      return { device_keys, master_keys, self_signing_keys };
    },

    async claimKeys(oneTimeKeys) {
      const claims: { userId: string; deviceId: string; algorithm: string }[] = [];
      for (const [userId, devices] of Object.entries(oneTimeKeys)) {
        if (!isValidUserId(userId, { historical: true }) || !ours(userId)) continue;
        for (const [deviceId, algorithm] of Object.entries(devices))
          claims.push({ userId, deviceId, algorithm });
      }
      const claimed = claims.length > 0 ? await store.e2ee.claimKeys(claims) : [];
      // One claim per device (the request maps a device to one algorithm): it names the algorithm.
      const algorithmOf = new Map(claims.map((c) => [`${c.userId}\n${c.deviceId}`, c.algorithm]));
      const one_time_keys: Record<string, Record<string, Record<string, JsonValue>>> = {};
      for (const c of claimed) {
        const algorithm = algorithmOf.get(`${c.userId}\n${c.deviceId}`) as string;
        const user = one_time_keys[c.userId] ?? {};
        one_time_keys[c.userId] = user;
        user[c.deviceId] = { ...user[c.deviceId], [`${algorithm}:${c.keyId}`]: c.key };
      }
      return { one_time_keys };
    },

    async hierarchy(origin, roomId, suggestedOnly) {
      if (!isValidRoomId(roomId)) throw invalidParam(`Invalid room ID ${JSON.stringify(roomId)}`);
      const room = await summary(roomId);
      // One answer for "unknown" and "not for you": the spec's 404 says no more than that.
      if (!room || !(await accessible(room, origin))) throw notFound('Room not found or not accessible');
      const children: HierarchyRoom[] = [];
      const inaccessible: string[] = [];
      for (const child of room.children_state) {
        const childId = child.state_key as string;
        if (suggestedOnly && (child.content as JsonObject).suggested !== true) continue;
        if (!isValidRoomId(childId)) continue;
        const childRoom = await summary(childId);
        // A child we hold no state for is not ours to describe: the asking server asks elsewhere.
        if (!childRoom) continue;
        if (await accessible(childRoom, origin)) children.push(childRoom);
        else inaccessible.push(childId);
      }
      return { room, children, inaccessible_children: inaccessible };
    },
  };
  return service;
}
