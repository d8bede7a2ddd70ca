/**
 * Send-to-device messaging — send_to_device.md, data/api/client-server/to_device.yaml.
 *
 * Messages for local devices are queued in the store with the sender's transaction ID in one
 * write (a retried `PUT` queues nothing twice; a Service Worker stopped mid-request leaves
 * either all or none) and stay until the device's next sync acknowledges them (sync-data.ts).
 * Messages for remote users go to the `E2eeRemote` port, one EDU per server.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import { serverNameOf } from '../../core/identifiers.ts';
import type { ToDeviceMessage } from '../../storage/store.ts';
import { type Auth, type HomeserverContext, randomString } from '../context.ts';
import type { E2eeRemote } from '../ports.ts';
import { serverOf } from '../rooms/accept.ts';

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface ToDeviceService {
  /** PUT /sendToDevice/{eventType}/{txnId}; `*` as a device ID means every device of the user. */
  sendToDevice(
    auth: Auth,
    eventType: string,
    txnId: string,
    messages: Record<string, Record<string, JsonObject>>,
  ): Promise<void>;
  /**
   * An `m.direct_to_device` EDU from `origin` (server-server-api.md "Send-to-device
   * messaging"): its messages for this server's users' devices are queued; one from a user of
   * another server than `origin`, or malformed, is dropped (EDUs have no answer).
   */
  receiveToDevice(origin: string, content: JsonObject): Promise<void>;
}

export interface ToDeviceDeps {
  remote: E2eeRemote;
  /** Told of the messages newly queued for this server's devices (application services hear of theirs). */
  queued?: (messages: readonly (ToDeviceMessage & { userId: string; deviceId: string })[]) => Promise<void>;
}

export function createToDeviceService(ctx: HomeserverContext, deps: ToDeviceDeps): ToDeviceService {
  const { store, config, logger } = ctx;

  /** The messages for `userId`'s existing devices (`*` means all of them). */
  async function forLocalDevices(
    userId: string,
    devices: Record<string, JsonObject>,
    message: ToDeviceMessage,
  ): Promise<(ToDeviceMessage & { userId: string; deviceId: string })[]> {
    // Only devices that exist get a queue: a message for an unknown one would never be
    // acknowledged, and so never deleted.
    const existing = (await store.accounts.listDevices(userId)).map((d) => d.deviceId);
    const targets = new Set<string>();
    for (const deviceId of Object.keys(devices)) {
      if (deviceId === '*') for (const d of existing) targets.add(d);
      else if (existing.includes(deviceId)) targets.add(deviceId);
    }
    const out: (ToDeviceMessage & { userId: string; deviceId: string })[] = [];
    for (const deviceId of targets) {
      // A specific device's own content wins over the `*` content.
      const content = devices[deviceId] ?? devices['*'];
      if (content) out.push({ ...message, userId, deviceId, content });
    }
    return out;
  }

  /** After the messages are durably queued; a failure is logged, never the sender's. */
  async function tellQueued(
    local: (ToDeviceMessage & { userId: string; deviceId: string })[],
  ): Promise<void> {
    try {
      await deps.queued?.(local);
    } catch (err) {
      logger.warn('to-device messages not passed on to application services', { error: String(err) });
    }
  }

  return {
    async sendToDevice(auth, eventType, txnId, messages) {
      const messageId = randomString(ctx.random, 16);
      const local: (ToDeviceMessage & { userId: string; deviceId: string })[] = [];
      const remote = new Map<string, Record<string, Record<string, JsonObject>>>();
      for (const [userId, devices] of Object.entries(messages)) {
        let server: string | undefined;
        try {
          server = userId.startsWith('@') ? serverNameOf(userId) : undefined;
        } catch {
          // Not a user ID: nobody to deliver to (to_device.yaml has no error for it).
        }
        if (server === undefined) continue;
        if (server !== config.serverName) {
          remote.set(server, { ...remote.get(server), [userId]: devices });
          continue;
        }
        local.push(
          ...(await forLocalDevices(userId, devices, {
            sender: auth.userId,
            type: eventType,
            content: {},
            messageId,
          })),
        );
      }
      const position = await store.e2ee.sendToDevice(local, {
        userId: auth.userId,
        deviceId: auth.deviceId ?? '',
        txnId,
      });
      // 0: this transaction was queued before; its messages went then.
      if (position === 0 && local.length > 0) return;
      if (local.length > 0) {
        ctx.notifier.notify({ users: new Set(local.map((m) => m.userId)) });
        await tellQueued(local);
      }
      for (const [destination, forServer] of remote) {
        try {
          await deps.remote.sendToDevice(destination, {
            sender: auth.userId,
            type: eventType,
            messageId,
            messages: forServer,
          });
        } catch (err) {
          logger.warn('to-device messages for a remote server were dropped', {
            destination,
            error: String(err),
          });
        }
      }
    },

    async receiveToDevice(origin, content) {
      const { sender, type, message_id: messageId, messages } = content;
      if (typeof sender !== 'string' || typeof type !== 'string' || typeof messageId !== 'string') return;
      if (!isObject(messages) || serverOf(sender) !== origin) return;
      const local: (ToDeviceMessage & { userId: string; deviceId: string })[] = [];
      for (const [userId, devices] of Object.entries(messages)) {
        // Only this server's users: a server does not relay for others.
        if (serverOf(userId) !== config.serverName || !isObject(devices)) continue;
        const bodies = Object.fromEntries(Object.entries(devices).filter(([, c]) => isObject(c))) as Record<
          string,
          JsonObject
        >;
        local.push(...(await forLocalDevices(userId, bodies, { sender, type, content: {}, messageId })));
      }
      if (local.length === 0) return;
      // The message ID is the sender's transaction: a transaction replayed (or applied again
      // after a crash) queues nothing twice.
      const position = await store.e2ee.sendToDevice(local, {
        userId: sender,
        deviceId: '',
        txnId: `m.direct_to_device ${messageId}`,
      });
      if (position === 0) return;
      ctx.notifier.notify({ users: new Set(local.map((m) => m.userId)) });
      await tellQueued(local);
    },
  };
}
