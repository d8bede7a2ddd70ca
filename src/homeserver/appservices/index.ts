/**
 * Application services (bridges) — application-service-api.md. A registered service
 * authenticates with its `as_token` and may act as any user of its namespaces (`?user_id=`);
 * its exclusive namespaces are closed to everyone else; the homeserver pushes it the events
 * it is interested in as transactions (`PUT {url}/_matrix/app/v1/transactions/{txnId}`),
 * asks it about users and aliases it may create, pings it, and forwards third-party lookups.
 *
 * Delivery is durable: a follower reads the event stream from a stored cursor and queues
 * what each service should get in the same transaction that moves the cursor; a sender
 * drains each service's queue as transactions, each kept (ID and extent) until the service
 * answers 2xx, retried with full-jitter exponential backoff. A restart resumes both.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import { parseJson } from '../../core/json.ts';
import type { StoredEvent, ToDeviceMessage } from '../../storage/store.ts';
import { repeatInBackground } from '../background.ts';
import { toClientEvent } from '../client-event.ts';
import { type Auth, type HomeserverContext, isLocalId, randomString } from '../context.ts';
import { forbidden, MatrixError, matrixError, notFound } from '../errors.ts';
import { type AppserviceRegistration, matches } from './registration.ts';

export type { AppserviceRegistration } from './registration.ts';

/** A to-device message as queued for one device. */
export type ToDeviceForDevice = ToDeviceMessage & { userId: string; deviceId: string };
export { checkRegistrations, parseRegistration, RegistrationError } from './registration.ts';

/** How the homeserver reaches services over HTTP: `fetch`, injected by the host. */
export type OutboundFetch = (request: Request) => Promise<Response>;

export const FOLLOWER_CURSOR = 'appservices';
/** Events or ephemeral items in one transaction at most (Synapse sends 100 events). */
const TXN_LIMIT = 100;
const MIN_RETRY_MS = 500;
const MAX_RETRY_MS = 5 * 60_000;
/** How long a query to a service may take before it counts as "no". */
const QUERY_TIMEOUT_MS = 10_000;
/** How often the follower looks for new events. */
const POLL_MS = 100;

export interface AppservicesService {
  readonly registrations: readonly AppserviceRegistration[];
  /** The service whose `as_token` this is. */
  byToken(token: string): AppserviceRegistration | undefined;
  /** Whether the user is the service's sender or in its user namespaces (exclusive or not). */
  owns(reg: AppserviceRegistration, userId: string): boolean;
  /** Who an `as_token` request acts as: the sender, or `?user_id=` within its namespaces. */
  authFor(
    reg: AppserviceRegistration,
    userIdParam: string | null,
    deviceIdParam: string | null,
  ): Promise<Auth>;
  /** M_EXCLUSIVE when the user ID is in a service's exclusive namespace, unless `auth` is that service. */
  checkUserId(userId: string, auth: Auth | null): void;
  /** M_EXCLUSIVE when the alias is in a service's exclusive namespace and `userId` is not one of that service's users. */
  checkAlias(alias: string, userId: string): void;
  /** The service(s) that may create this user, asked whether it exists (application-service-api "Query User"). */
  queryUser(userId: string): Promise<boolean>;
  queryAlias(alias: string): Promise<boolean>;
  /** POST /appservice/{appserviceId}/ping */
  ping(auth: Auth, appserviceId: string, transactionId: string | undefined): Promise<{ duration_ms: number }>;
  /** The protocols of every service (`GET /thirdparty/protocols`). */
  protocols(): Promise<Record<string, JsonObject>>;
  /** Forwards a third-party lookup (`kind`: protocol, location, user) to the services of `protocol`. */
  thirdparty(
    kind: 'protocol' | 'location' | 'user',
    protocol: string | null,
    query: URLSearchParams,
  ): Promise<JsonObject | JsonObject[]>;
  /** Queues an ephemeral event (typing, receipt) of a room for the services that want them. */
  ephemeral(roomId: string, edu: JsonObject): Promise<void>;
  /**
   * Queues a local user's presence (an `m.presence` event) for the services that want
   * ephemeral events and are interested in the user: theirs, or sharing a room with theirs.
   */
  presence(userId: string, content: JsonObject): Promise<void>;
  /**
   * Queues to-device messages queued for this server's devices (from a local sender or over
   * federation) whose recipient is a user of a service that wants ephemeral events.
   */
  toDevice(messages: readonly ToDeviceForDevice[]): Promise<void>;
  /** One step of the follower: queues the events since the cursor; the number handled. */
  follow(): Promise<number>;
  /** One round of sending: every service with something queued whose backoff allows. */
  deliver(): Promise<void>;
  /** Runs follow + deliver in the background until `stop`. */
  start(): void;
  stop(): void;
}

export interface AppservicesDeps {
  registrations: readonly AppserviceRegistration[];
  fetch?: OutboundFetch;
}

export function createAppservicesService(ctx: HomeserverContext, deps: AppservicesDeps): AppservicesService {
  const { store, config, clock, logger, random } = ctx;
  const registrations = deps.registrations;
  const byAsToken = new Map(registrations.map((r) => [r.asToken, r]));
  const byId = new Map(registrations.map((r) => [r.id, r]));
  /** When each service may be tried again (in memory: after a restart, at once). */
  const retryAt = new Map<string, number>();
  const senderId = (reg: AppserviceRegistration) => `@${reg.senderLocalpart}:${config.serverName}`;

  const owns = (reg: AppserviceRegistration, userId: string) =>
    userId === senderId(reg) || matches(reg.namespaces.users, userId);

  function callService(
    reg: AppserviceRegistration,
    method: string,
    path: string,
    body?: JsonObject,
  ): Request {
    if (reg.url === null || !deps.fetch) throw matrixError(400, 'M_URL_NOT_SET', `${reg.id} has no URL`);
    return new Request(`${reg.url}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${reg.hsToken}`,
        ...(body ? { 'Content-Type': 'application/json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(QUERY_TIMEOUT_MS),
    });
  }

  async function ask(reg: AppserviceRegistration, path: string): Promise<Response | null> {
    if (reg.url === null || !deps.fetch) return null;
    try {
      return await deps.fetch(callService(reg, 'GET', path));
    } catch (err) {
      logger.warn('application service did not answer', { id: reg.id, path, error: String(err) });
      return null;
    }
  }

  /** Ensures each service's sender exists (Synapse does the same): bridges act as it at once. */
  const senders = (async () => {
    for (const reg of registrations) {
      const userId = senderId(reg);
      if (await store.accounts.getUser(userId)) continue;
      try {
        await store.accounts.createUser(
          { userId, passwordHash: null, createdAt: clock.now(), isGuest: false, userType: 'bot' },
          { profile: { displayname: reg.senderLocalpart } },
        );
      } catch (err) {
        logger.warn('could not create an application service sender', { userId, error: String(err) });
      }
    }
  })();

  /** Whether the service is interested in an event of a room (application-service-api "Pushing events"). */
  async function interested(
    reg: AppserviceRegistration,
    stored: StoredEvent,
    members: string[],
    aliases: string[],
  ) {
    const event = stored.event;
    if (owns(reg, event.sender)) return true;
    if (event.type === 'm.room.member' && typeof event.state_key === 'string' && owns(reg, event.state_key))
      return true;
    if (matches(reg.namespaces.rooms, stored.roomId)) return true;
    if (aliases.some((a) => matches(reg.namespaces.aliases, a))) return true;
    return members.some((m) => owns(reg, m));
  }

  async function follow(): Promise<number> {
    if (registrations.length === 0) return 0;
    await senders;
    const head = (await store.positions()).events;
    const cursor = await store.operator.getCursor(FOLLOWER_CURSOR);
    // A first start begins at the present: services are told of what happens from now on.
    if (cursor === null) {
      await store.operator.enqueueAppservice([], { name: FOLLOWER_CURSOR, position: head });
      return 0;
    }
    if (head <= cursor) return 0;
    const upTo = Math.min(head, cursor + 500);
    const rooms = await store.rooms.roomsWithEvents(cursor, upTo);
    const items: { asId: string; kind: 'event'; data: JsonObject; stream: number }[] = [];
    const now = clock.now();
    for (const roomId of rooms) {
      const page = await store.rooms.timeline(roomId, { from: cursor, to: upTo, dir: 'f', limit: 1000 });
      if (page.events.length === 0) continue;
      const members = (await store.rooms.members(roomId))
        .filter((m) => m.membership === 'join' || m.membership === 'invite')
        .map((m) => m.userId);
      const aliases = (await store.rooms.aliasesOf(roomId)).map((a) => a.alias);
      for (const stored of page.events) {
        for (const reg of registrations) {
          if (reg.url === null || !(await interested(reg, stored, members, aliases))) continue;
          items.push({
            asId: reg.id,
            kind: 'event',
            data: toClientEvent(stored, null, now),
            stream: stored.stream ?? 0,
          });
        }
      }
    }
    items.sort((a, b) => a.stream - b.stream);
    await store.operator.enqueueAppservice(
      items.map(({ asId, kind, data }) => ({ asId, kind, data })),
      { name: FOLLOWER_CURSOR, position: upTo },
    );
    return upTo - cursor;
  }

  async function deliverTo(reg: AppserviceRegistration): Promise<void> {
    if (reg.url === null || !deps.fetch) return;
    if ((retryAt.get(reg.id) ?? 0) > clock.now()) return;
    let state = await store.operator.getAppserviceTxn(reg.id);
    const items = await store.operator.appserviceQueue(reg.id, TXN_LIMIT, state?.upTo);
    if (items.length === 0) {
      if (state) await store.operator.setAppserviceTxn(reg.id, null);
      return;
    }
    if (!state) {
      state = {
        txnId: `${clock.now()}-${randomString(random, 8)}`,
        upTo: (items[items.length - 1] as { seq: number }).seq,
        retryInterval: 0,
      };
      await store.operator.setAppserviceTxn(reg.id, state);
    }
    const events = items.filter((i) => i.kind === 'event').map((i) => i.data);
    const ephemeral = items.filter((i) => i.kind === 'ephemeral').map((i) => i.data);
    const toDevice = items.filter((i) => i.kind === 'to_device').map((i) => i.data);
    const body: JsonObject = { events };
    // The spec's key, and MSC2409's, which bridges of the matrix-appservice family read.
    if (ephemeral.length > 0) Object.assign(body, { ephemeral, 'de.sorunome.msc2409.ephemeral': ephemeral });
    // MSC2409's to-device key, as Synapse sends it (the spec has none yet).
    if (toDevice.length > 0) body['de.sorunome.msc2409.to_device'] = toDevice;
    let ok = false;
    try {
      const res = await deps.fetch(
        callService(reg, 'PUT', `/_matrix/app/v1/transactions/${encodeURIComponent(state.txnId)}`, body),
      );
      await res.body?.cancel();
      ok = res.ok;
      if (!ok) logger.warn('application service refused a transaction', { id: reg.id, status: res.status });
    } catch (err) {
      logger.warn('application service unreachable', { id: reg.id, error: String(err) });
    }
    if (ok) {
      await store.operator.ackAppservice(reg.id, state.upTo);
      retryAt.delete(reg.id);
      return;
    }
    const interval = Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, state.retryInterval * 2));
    await store.operator.setAppserviceTxn(reg.id, { ...state, retryInterval: interval });
    // Full jitter: a service coming back is not hit by every homeserver at once.
    const jitter = (random.bytes(2).reduce((a, b) => a * 256 + b, 0) / 65_536) * interval;
    retryAt.set(reg.id, clock.now() + Math.max(MIN_RETRY_MS / 2, jitter));
  }

  async function deliver(): Promise<void> {
    for (const reg of registrations) await deliverTo(reg);
  }

  const background = repeatInBackground(
    async () => {
      await follow();
      await deliver();
    },
    { intervalMs: POLL_MS, logger, what: 'application service delivery' },
  );

  async function jsonOf(res: Response): Promise<unknown> {
    try {
      return parseJson(await res.text());
    } catch {
      return undefined;
    }
  }

  return {
    registrations,
    byToken: (token) => byAsToken.get(token),
    owns,

    async authFor(reg, userIdParam, deviceIdParam) {
      await senders;
      const userId = userIdParam ?? senderId(reg);
      if (!isLocalId(config, userId) || !owns(reg, userId)) {
        throw forbidden(`Application service ${reg.id} cannot act as ${userId}`);
      }
      const user = await store.accounts.getUser(userId);
      if (!user) throw forbidden(`${userId} is not registered`);
      if (user.deactivated) throw forbidden(`${userId} is deactivated`);
      if (deviceIdParam !== null && !(await store.accounts.getDevice(userId, deviceIdParam))) {
        throw matrixError(400, 'M_UNKNOWN_DEVICE', `${deviceIdParam} is not a device of ${userId}`);
      }
      return {
        userId,
        deviceId: deviceIdParam,
        isGuest: false,
        rateLimited: reg.rateLimited,
        appserviceId: reg.id,
      };
    },

    checkUserId(userId, auth) {
      for (const reg of registrations) {
        if (auth?.appserviceId === reg.id) continue;
        if (matches(reg.namespaces.users, userId, true) || userId === senderId(reg)) {
          throw matrixError(400, 'M_EXCLUSIVE', `${userId} is reserved by an application service`);
        }
      }
      if (auth?.appserviceId !== undefined) {
        const reg = byId.get(auth.appserviceId);
        if (reg && !owns(reg, userId))
          throw matrixError(400, 'M_EXCLUSIVE', `${userId} is outside the application service's namespaces`);
      }
    },

    checkAlias(alias, userId) {
      for (const reg of registrations) {
        if (owns(reg, userId)) continue;
        if (matches(reg.namespaces.aliases, alias, true))
          throw matrixError(400, 'M_EXCLUSIVE', `${alias} is reserved by an application service`);
      }
    },

    async queryUser(userId) {
      for (const reg of registrations) {
        if (!matches(reg.namespaces.users, userId)) continue;
        const res = await ask(reg, `/_matrix/app/v1/users/${encodeURIComponent(userId)}`);
        await res?.body?.cancel();
        if (res?.ok && (await store.accounts.getUser(userId))) return true;
      }
      return false;
    },

    async queryAlias(alias) {
      for (const reg of registrations) {
        if (!matches(reg.namespaces.aliases, alias)) continue;
        const res = await ask(reg, `/_matrix/app/v1/rooms/${encodeURIComponent(alias)}`);
        await res?.body?.cancel();
        if (res?.ok && (await store.rooms.getAlias(alias))) return true;
      }
      return false;
    },

    async ping(auth, appserviceId, transactionId) {
      const reg = byId.get(appserviceId);
      if (!reg || auth.appserviceId !== appserviceId) {
        throw forbidden('Only the application service itself may ping it');
      }
      const started = clock.now();
      let res: Response;
      try {
        res = await (deps.fetch as OutboundFetch)(
          callService(
            reg,
            'POST',
            '/_matrix/app/v1/ping',
            transactionId ? { transaction_id: transactionId } : {},
          ),
        );
      } catch (err) {
        if (err instanceof MatrixError) throw err;
        const timeout = (err as Error)?.name === 'TimeoutError';
        throw matrixError(
          timeout ? 504 : 502,
          timeout ? 'M_CONNECTION_TIMEOUT' : 'M_CONNECTION_FAILED',
          `Could not reach ${reg.id}`,
        );
      }
      const text = await res.text();
      if (!res.ok) {
        throw matrixError(502, 'M_BAD_STATUS', `${reg.id} answered ${res.status}`, {
          status: res.status,
          body: text.slice(0, 1000),
        });
      }
      return { duration_ms: Math.max(0, clock.now() - started) };
    },

    async protocols() {
      const out: Record<string, JsonObject> = {};
      for (const reg of registrations) {
        for (const protocol of reg.protocols) {
          if (out[protocol]) continue;
          const res = await ask(reg, `/_matrix/app/v1/thirdparty/protocol/${encodeURIComponent(protocol)}`);
          const body = res?.ok ? await jsonOf(res) : undefined;
          if (typeof body === 'object' && body !== null && !Array.isArray(body))
            out[protocol] = body as JsonObject;
        }
      }
      return out;
    },

    async thirdparty(kind, protocol, query) {
      const candidates = registrations.filter((r) => protocol === null || r.protocols.includes(protocol));
      if (protocol !== null && candidates.length === 0) throw notFound(`No bridge speaks ${protocol}`);
      const results: JsonObject[] = [];
      for (const reg of candidates) {
        const path =
          protocol === null
            ? `/_matrix/app/v1/thirdparty/${kind}`
            : `/_matrix/app/v1/thirdparty/${kind}/${encodeURIComponent(protocol)}`;
        const qs = query.toString();
        const res = await ask(reg, qs ? `${path}?${qs}` : path);
        const body = res?.ok ? await jsonOf(res) : undefined;
        if (kind === 'protocol') {
          if (typeof body === 'object' && body !== null && !Array.isArray(body)) return body as JsonObject;
          continue;
        }
        if (Array.isArray(body))
          results.push(...(body.filter((b) => typeof b === 'object' && b) as JsonObject[]));
      }
      if (kind === 'protocol') throw notFound(`No bridge answered for ${protocol}`);
      return results;
    },

    async ephemeral(roomId, edu) {
      const wanting = registrations.filter((r) => r.receiveEphemeral && r.url !== null);
      if (wanting.length === 0) return;
      const members = (await store.rooms.members(roomId, 'join')).map((m) => m.userId);
      const items = wanting
        .filter((reg) => matches(reg.namespaces.rooms, roomId) || members.some((m) => owns(reg, m)))
        .map((reg) => ({ asId: reg.id, kind: 'ephemeral' as const, data: { ...edu, room_id: roomId } }));
      if (items.length > 0) await store.operator.enqueueAppservice(items);
    },

    async presence(userId, content) {
      const wanting = registrations.filter((r) => r.receiveEphemeral && r.url !== null);
      if (wanting.length === 0) return;
      const interested = new Set(wanting.filter((reg) => owns(reg, userId)));
      const rooms = (await store.rooms.roomsForUser(userId, 'join')).map((m) => m.roomId);
      for (const roomId of rooms) {
        const undecided = wanting.filter((reg) => !interested.has(reg));
        if (undecided.length === 0) break;
        const members = (await store.rooms.members(roomId, 'join')).map((m) => m.userId);
        for (const reg of undecided) {
          if (matches(reg.namespaces.rooms, roomId) || members.some((m) => owns(reg, m))) interested.add(reg);
        }
      }
      const data: JsonObject = { type: 'm.presence', sender: userId, content };
      const items = [...interested].map((reg) => ({ asId: reg.id, kind: 'ephemeral' as const, data }));
      if (items.length > 0) await store.operator.enqueueAppservice(items);
    },

    async toDevice(messages) {
      const wanting = registrations.filter((r) => r.receiveEphemeral && r.url !== null);
      if (wanting.length === 0) return;
      const items = messages.flatMap((m) =>
        wanting
          .filter((reg) => owns(reg, m.userId))
          .map((reg) => ({
            asId: reg.id,
            kind: 'to_device' as const,
            data: {
              type: m.type,
              sender: m.sender,
              content: m.content,
              to_user_id: m.userId,
              to_device_id: m.deviceId,
            },
          })),
      );
      if (items.length > 0) await store.operator.enqueueAppservice(items);
    },

    follow,
    deliver,

    start() {
      if (registrations.length > 0) background.start();
    },
    stop: () => background.stop(),
  };
}
