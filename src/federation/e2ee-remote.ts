/**
 * The homeserver's `E2eeRemote` port over federation — server-server-api.md "End-to-End
 * Encryption", "Send-to-device messaging", "Device Management":
 *
 * - a local client's `/keys/query` and `/keys/claim` for a remote user become
 *   `POST /_matrix/federation/v1/user/keys/query` and `…/claim` to the user's server
 *   (the query port's requests, queries.ts);
 * - to-device messages for a remote user become one `m.direct_to_device` EDU per server in
 *   the durable outbox, so the sender's retries deliver it after an outage too;
 * - a local user's changed devices or cross-signing keys become `m.device_list_update`
 *   (one per device, with its keys) and `m.signing_key_update` EDUs for every server that
 *   shares a room with the user.
 *
 * `stream_id`s are increasing per user (the clock, moved on when two changes share a
 * millisecond) and `prev_id` names the previous update this process announced for the user.
 * After a restart the first update names none it sent before, which a receiver such as Synapse
 * takes as a gap and answers by fetching the whole list (`/user/devices`). Deleted devices are
 * announced one by one (`deleted: true`), in the durable outbox with the rest: a server that
 * is offline when the device goes, or while this one restarts, hears of it when it is back.
 */
import type { JsonObject } from '../core/canonical-json.ts';
import type { Clock, Logger } from '../homeserver/context.ts';
import type { E2eeRemote } from '../homeserver/ports.ts';
import { serverOf } from '../homeserver/rooms/accept.ts';
import type { Store } from '../storage/store.ts';
import type { QueryPort } from './queries.ts';

export interface E2eeRemoteOptions {
  serverName: string;
  store: Store;
  queries: Pick<QueryPort, 'queryUserKeys' | 'claimUserKeys'>;
  clock: Clock;
  logger: Logger;
  /** New outbox rows for these servers (the sender's `wake`). */
  outboxWritten(destinations: readonly string[]): void;
}

export function createE2eeRemote(options: E2eeRemoteOptions): E2eeRemote {
  const { serverName, store, queries, clock, logger } = options;
  const lastStreamId = new Map<string, number>();

  function nextStreamId(userId: string): { streamId: number; prevId: number[] } {
    const previous = lastStreamId.get(userId);
    const streamId = Math.max(clock.now(), (previous ?? 0) + 1);
    lastStreamId.set(userId, streamId);
    return { streamId, prevId: previous === undefined ? [] : [previous] };
  }

  /** Remote servers with a joined member in a room where `userId` is joined. */
  async function serversSharingRoomWith(userId: string): Promise<string[]> {
    const servers = new Set<string>();
    for (const { roomId } of await store.rooms.roomsForUser(userId, 'join')) {
      for (const member of await store.rooms.members(roomId, 'join')) {
        const server = serverOf(member.userId);
        if (server !== undefined && server !== serverName) servers.add(server);
      }
    }
    return [...servers];
  }

  async function enqueue(destinations: readonly string[], edus: readonly JsonObject[]): Promise<void> {
    if (destinations.length === 0) return;
    for (const edu of edus) await store.federation.enqueueEdu(destinations, edu);
    options.outboxWritten(destinations);
  }

  return {
    queryKeys: (destination, deviceKeys) => queries.queryUserKeys(destination, deviceKeys),
    claimKeys: (destination, claims) => queries.claimUserKeys(destination, claims),

    async sendToDevice(destination, { sender, type, messageId, messages }) {
      await enqueue(
        [destination],
        [
          {
            edu_type: 'm.direct_to_device',
            content: { sender, type, message_id: messageId, messages: messages as JsonObject },
          },
        ],
      );
    },

    async deviceListChanged(userId, deleted = []) {
      const destinations = await serversSharingRoomWith(userId);
      if (destinations.length === 0) return;
      const [devices, keys, crossSigning] = await Promise.all([
        store.accounts.listDevices(userId),
        store.e2ee.getDeviceKeys([{ userId }]),
        store.e2ee.getCrossSigningKeys(userId),
      ]);
      const keysOf = new Map(keys.map((k) => [k.deviceId, k.keys]));
      const edus: JsonObject[] = [];
      const existing = new Set(devices.map((d) => d.deviceId));
      for (const deviceId of deleted) {
        // Deleted, unless a device of the same ID was made again since.
        if (existing.has(deviceId)) continue;
        const { streamId, prevId } = nextStreamId(userId);
        const content = {
          user_id: userId,
          device_id: deviceId,
          stream_id: streamId,
          prev_id: prevId,
          deleted: true,
        };
        edus.push({ edu_type: 'm.device_list_update', content });
      }
      for (const device of devices) {
        const { streamId, prevId } = nextStreamId(userId);
        const content: JsonObject = {
          user_id: userId,
          device_id: device.deviceId,
          stream_id: streamId,
          prev_id: prevId,
          deleted: false,
        };
        if (device.displayName) content.device_display_name = device.displayName;
        const deviceKeys = keysOf.get(device.deviceId);
        if (deviceKeys) content.keys = deviceKeys;
        edus.push({ edu_type: 'm.device_list_update', content });
      }
      const signing: JsonObject = { user_id: userId };
      if (crossSigning.master) signing.master_key = crossSigning.master;
      if (crossSigning.self_signing) signing.self_signing_key = crossSigning.self_signing;
      if (crossSigning.master || crossSigning.self_signing)
        edus.push({ edu_type: 'm.signing_key_update', content: signing });
      logger.debug('device-list update for other servers', { userId, destinations: destinations.length });
      await enqueue(destinations, edus);
    },
  };
}
