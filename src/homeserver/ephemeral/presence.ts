/**
 * Presence — client-server-api/modules/presence.md, presence.yaml, event-schemas m.presence.
 *
 * Memory only (the issue allows it; QUERIES.md keeps presence out of the store): each user's
 * state, status message and last activity, and a position that moves on every change so
 * /sync can ask for changes since a token. Presence is shown to users who share a room with
 * the user (presence.md "Security considerations"), and to the user themself.
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import type { HomeserverContext } from '../context.ts';

export type PresenceState = 'online' | 'offline' | 'unavailable';

/**
 * presence.md "Last active ago": while a user acted within this window the server says
 * `currently_active` and need not send every bump of the last-active time.
 */
export const CURRENTLY_ACTIVE_MS = 60_000;

/**
 * A user none of whose clients has synced or set presence for this long has gone: they are
 * shown offline (Synapse waits 30 s after the last sync; long-polls here last up to 25 s, so a
 * client that is still there is seen well within this).
 */
export const OFFLINE_AFTER_MS = 5 * 60_000;
/** How often, at most, the offline check walks every entry (on reads; no timer runs). */
const OFFLINE_SWEEP_EVERY_MS = 30_000;

export interface PresenceStatus {
  presence: PresenceState;
  last_active_ago?: number;
  status_msg?: string | null;
  currently_active?: boolean;
}

export interface PresenceService {
  /** Increases with every change; the `presence` part of a sync token. */
  readonly position: number;
  /** `PUT /presence/{userId}/status`. `statusMsg` undefined keeps the current message, null clears it. */
  set(userId: string, presence: PresenceState, statusMsg?: string | null): Promise<void>;
  /**
   * A /sync from the user (`set_presence`, default online): marks an offline user online (or
   * the state asked for) and bumps the last-active time; `offline` leaves presence alone.
   */
  syncing(userId: string, setPresence?: PresenceState): Promise<void>;
  /** The user's presence now, or null when the server has none for them. */
  get(userId: string): PresenceStatus | null;
  /**
   * `GET /presence/{userId}/status`: the user's presence, `offline` for a local user with
   * none recorded (e.g. since a restart), null for a user this server does not know.
   */
  status(userId: string): Promise<PresenceStatus | null>;
  /** Whether `viewer` may see `userId`'s presence: themself, or a user sharing a room. */
  canSee(viewer: string, userId: string): Promise<boolean>;
  /**
   * `m.presence` events for the /sync `presence` section: users whose presence changed
   * after `since` and who share a room with `viewer` (or are the viewer). `since` 0, or a
   * position from before a restart, gives everyone the server has presence for.
   */
  changesSince(viewer: string, since: number): Promise<JsonObject[]>;
}

interface Entry {
  presence: PresenceState;
  statusMsg: string | null;
  lastActive: number;
  /** Last sync or presence request from any of the user's clients. */
  lastSeen: number;
  changed: number;
}

export function createPresenceService(
  ctx: Pick<HomeserverContext, 'clock' | 'notifier' | 'store' | 'logger'>,
): PresenceService {
  const { clock, notifier, store, logger } = ctx;
  const entries = new Map<string, Entry>();
  let position = 0;

  const joinedRooms = async (userId: string) =>
    (await store.rooms.roomsForUser(userId, 'join')).map((m) => m.roomId);

  /** Wakes the user's own /sync and those of everyone in their rooms. */
  const announce = async (userId: string) => {
    try {
      notifier.notify({ users: [userId], rooms: await joinedRooms(userId) });
    } catch (err) {
      logger.warn('presence: could not wake room members', { userId, error: String(err) });
      notifier.notify({ users: [userId] });
    }
  };

  const update = async (userId: string, patch: Partial<Omit<Entry, 'changed' | 'lastSeen'>>) => {
    const now = clock.now();
    const old = entries.get(userId);
    const next: Entry = {
      presence: patch.presence ?? old?.presence ?? 'offline',
      statusMsg: patch.statusMsg !== undefined ? patch.statusMsg : (old?.statusMsg ?? null),
      lastActive: patch.lastActive ?? old?.lastActive ?? now,
      lastSeen: now,
      changed: old?.changed ?? 0,
    };
    const visible = !old || old.presence !== next.presence || old.statusMsg !== next.statusMsg;
    // A bump of the last-active time alone is not news while the user stays currently active.
    const wasActive = old !== undefined && now - old.lastActive < CURRENTLY_ACTIVE_MS;
    if (visible || (next.lastActive !== old?.lastActive && !wasActive)) {
      next.changed = ++position;
      entries.set(userId, next);
      await announce(userId);
    } else {
      entries.set(userId, next);
    }
  };

  const statusOf = (entry: Entry, now: number): PresenceStatus => {
    const status: PresenceStatus = {
      presence: entry.presence,
      last_active_ago: Math.max(0, now - entry.lastActive),
    };
    if (entry.statusMsg !== null) status.status_msg = entry.statusMsg;
    if (entry.presence === 'online') status.currently_active = now - entry.lastActive < CURRENTLY_ACTIVE_MS;
    return status;
  };

  let lastSweep = Number.NEGATIVE_INFINITY;
  /** Marks users whose clients all went quiet as offline (see OFFLINE_AFTER_MS). */
  const sweep = async () => {
    const now = clock.now();
    if (now - lastSweep < OFFLINE_SWEEP_EVERY_MS) return;
    lastSweep = now;
    // Every change is made before the first await, so a synchronous `get` already sees it.
    const gone: string[] = [];
    for (const [userId, entry] of entries) {
      if (entry.presence === 'offline' || now - entry.lastSeen < OFFLINE_AFTER_MS) continue;
      entry.presence = 'offline';
      entry.changed = ++position;
      gone.push(userId);
    }
    for (const userId of gone) await announce(userId);
  };

  const sharesRoom = async (a: string, b: string) => {
    const rooms = new Set(await joinedRooms(a));
    for (const room of await joinedRooms(b)) if (rooms.has(room)) return true;
    return false;
  };

  function get(userId: string): PresenceStatus | null {
    void sweep();
    const entry = entries.get(userId);
    return entry ? statusOf(entry, clock.now()) : null;
  }

  return {
    get position() {
      return position;
    },

    set(userId, presence, statusMsg) {
      // Setting any state counts as activity only when it says the user is here.
      return update(userId, {
        presence,
        ...(statusMsg !== undefined ? { statusMsg } : {}),
        ...(presence === 'online' ? { lastActive: clock.now() } : {}),
      });
    },

    async syncing(userId, setPresence = 'online') {
      if (setPresence === 'offline') return;
      const current = entries.get(userId)?.presence;
      if (setPresence === 'online') {
        // An explicit "unavailable" (idle) stays until the client says otherwise.
        await update(userId, {
          presence: current === 'unavailable' ? 'unavailable' : 'online',
          lastActive: clock.now(),
        });
      } else {
        await update(userId, { presence: setPresence });
      }
    },

    get,

    async status(userId) {
      return get(userId) ?? ((await store.accounts.getUser(userId)) ? { presence: 'offline' } : null);
    },

    async canSee(viewer, userId) {
      return viewer === userId || sharesRoom(viewer, userId);
    },

    async changesSince(viewer, since) {
      await sweep();
      const fresh = since <= 0 || since > position;
      // The usual case of a woken /sync: nothing changed since its token.
      if (!fresh && since === position) return [];
      const changed = [...entries].filter(([, e]) => fresh || e.changed > since);
      if (changed.length === 0) return [];
      const viewerRooms = await joinedRooms(viewer);
      let visible: (userId: string) => Promise<boolean>;
      if (changed.length <= viewerRooms.length) {
        const rooms = new Set(viewerRooms);
        visible = async (userId) => {
          for (const room of await joinedRooms(userId)) if (rooms.has(room)) return true;
          return false;
        };
      } else {
        // Many changes: collect the viewer's room-mates once instead of asking per user.
        const mates = new Set<string>();
        for (const room of viewerRooms)
          for (const m of await store.rooms.members(room, 'join')) mates.add(m.userId);
        visible = async (userId) => mates.has(userId);
      }
      const shown: [string, Entry][] = [];
      for (const [userId, entry] of changed)
        if (userId === viewer || (await visible(userId))) shown.push([userId, entry]);
      if (shown.length === 0) return [];
      // Every profile in one read: a room of 1,000 coming online is 1,000 changes per pass.
      const profiles = await store.userData.getProfiles(shown.map(([userId]) => userId));
      const now = clock.now();
      return shown.map(([userId, entry]): JsonObject => {
        const content: JsonObject = { ...statusOf(entry, now) };
        const profile = profiles.get(userId);
        if (typeof profile?.displayname === 'string') content.displayname = profile.displayname;
        if (typeof profile?.avatar_url === 'string') content.avatar_url = profile.avatar_url;
        return { type: 'm.presence', sender: userId, content };
      });
    },
  };
}
