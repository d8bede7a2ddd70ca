/**
 * Simplified sliding sync — MSC4186 (not yet in the spec), at the unstable endpoint the
 * clients call: `POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync`, advertised
 * as `org.matrix.simplified_msc3575` in `/versions` `unstable_features` (what matrix-rust-sdk,
 * hence Element X, looks for).
 *
 * Accepted in both request forms in use: the one matrix-js-sdk and Element X send (`pos` and
 * `timeout` in the query, `ranges`, `required_state` as `[type, state_key]` pairs with `*`,
 * `$ME` and `$LAZY`, `is_invite`) and the MSC's later one (`pos`/`timeout` in the body,
 * `range`, `required_state: {include, exclude, lazy_members}`, `is_invited`).
 */
import type { Services } from '../../homeserver/services.ts';
import type {
  ExtensionScope,
  ListRequest,
  RequiredState,
  RoomConfig,
  StatePattern,
} from '../../homeserver/sliding-sync/index.ts';
import { type Endpoint, endpoint, q, v } from '../endpoint.ts';
import type { Infer } from '../validate.ts';

/** "The server may cap this number" (MSC4186 `timeline_limit`): per room, per answer. */
export const MAX_TIMELINE_LIMIT = 100;

const shortString = v.string({ max: 255 });
const int = v.int({ min: 0 });
const pair = v.array(shortString, { min: 2, max: 2 });
const pattern = v.object({ type: v.optional(shortString), state_key: v.optional(shortString) });
const requiredState = v.union(
  v.array(pair, { max: 100 }),
  v.object({
    include: v.optional(v.array(pattern, { max: 100 })),
    exclude: v.optional(v.array(pattern, { max: 100 })),
    lazy_members: v.optional(v.bool()),
  }),
);
const roomConfigShape = {
  timeline_limit: v.optional(int),
  required_state: v.optional(requiredState),
};
const range = v.refine(v.array(int, { min: 2, max: 2 }), (r) =>
  (r[0] as number) > (r[1] as number) ? 'a range must start at or before its end' : undefined,
);
/** MSC3575's list orders (matrix-js-sdk's `sort`); MSC4186 keeps only recency, the default. */
const LIST_SORTS = ['by_recency', 'by_name', 'by_notification_level'] as const;
const roomTypes = v.optional(v.array(v.nullable(shortString), { max: 50 }));
const list = v.object({
  ...roomConfigShape,
  ranges: v.optional(v.array(range, { max: 100 })),
  range: v.optional(range),
  filters: v.optional(
    v.object({
      is_dm: v.optional(v.bool()),
      is_encrypted: v.optional(v.bool()),
      is_invite: v.optional(v.bool()),
      is_invited: v.optional(v.bool()),
      spaces: v.optional(v.array(shortString, { max: 100 })),
      room_types: roomTypes,
      not_room_types: roomTypes,
      tags: v.optional(v.array(shortString, { max: 100 })),
      not_tags: v.optional(v.array(shortString, { max: 100 })),
      room_name_like: v.optional(shortString),
    }),
  ),
  sort: v.optional(v.array(v.enum(LIST_SORTS), { max: LIST_SORTS.length })),
});
const scope = v.optional(
  v.object({
    enabled: v.optional(v.bool()),
    lists: v.optional(v.array(shortString, { max: 100 })),
    rooms: v.optional(v.array(shortString, { max: 500 })),
  }),
);

type RequiredStateBody = Infer<typeof requiredState>;
type ScopeBody = Infer<typeof scope>;

/** `$ME` names the user; `*` any; `$LAZY` turns lazy members on (the unstable form). */
function readRequiredState(body: RequiredStateBody | undefined, userId: string): RequiredState {
  const out: RequiredState = { include: [], exclude: [], lazyMembers: false };
  if (body === undefined) return out;
  const key = (k: string | undefined) => (k === undefined || k === '*' ? null : k === '$ME' ? userId : k);
  if (Array.isArray(body)) {
    for (const [type, stateKey] of body as [string, string][]) {
      if (stateKey === '$LAZY') {
        if (type === 'm.room.member') out.lazyMembers = true;
        continue;
      }
      out.include.push({ type: type === '*' ? null : type, stateKey: key(stateKey) });
    }
    return out;
  }
  const patterns = (list: { type?: string; state_key?: string }[] | undefined): StatePattern[] =>
    (list ?? []).map((p) => ({ type: p.type ?? null, stateKey: key(p.state_key) }));
  return {
    include: patterns(body.include),
    exclude: patterns(body.exclude),
    lazyMembers: body.lazy_members === true,
  };
}

function readConfig(
  body: { timeline_limit?: number; required_state?: RequiredStateBody },
  userId: string,
): RoomConfig {
  return {
    timelineLimit: Math.min(body.timeline_limit ?? 0, MAX_TIMELINE_LIMIT),
    requiredState: readRequiredState(body.required_state, userId),
  };
}

function readScope(body: ScopeBody): ExtensionScope | undefined {
  if (body?.enabled !== true) return undefined;
  return { enabled: true, lists: body.lists, rooms: body.rooms };
}

export function slidingSyncEndpoints(services: Services): Endpoint[] {
  const { slidingSync } = services;
  return [
    endpoint({
      // POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync
      method: 'POST',
      path: '/sync',
      versions: ['unstable/org.matrix.simplified_msc3575'],
      auth: 'required',
      guest: true,
      query: q.object({
        pos: q.optional(q.string()),
        timeout: q.optional(q.int({ min: 0 })),
        set_presence: q.optional(q.enum(['offline', 'online', 'unavailable'])),
      }),
      body: v.object({
        conn_id: v.optional(v.string({ max: 64 })),
        txn_id: v.optional(shortString),
        pos: v.optional(v.string({ max: 255 })),
        timeout: v.optional(int),
        set_presence: v.optional(v.enum(['offline', 'online', 'unavailable'])),
        lists: v.optional(v.record(list, { maxKeys: 100, key: v.string({ min: 1, max: 64 }) })),
        room_subscriptions: v.optional(v.record(v.object(roomConfigShape), { maxKeys: 500 })),
        unsubscribe_rooms: v.optional(v.array(shortString, { max: 500 })),
        extensions: v.optional(
          v.object({
            to_device: v.optional(
              v.object({
                enabled: v.optional(v.bool()),
                since: v.optional(shortString),
                limit: v.optional(int),
              }),
            ),
            e2ee: v.optional(v.object({ enabled: v.optional(v.bool()) })),
            account_data: scope,
            receipts: scope,
            typing: scope,
          }),
        ),
      }),
      allowEmptyBody: true,
      handler: async ({ query, body, auth, request }) => {
        const { userId } = auth;
        const lists: Record<string, ListRequest> = {};
        for (const [name, l] of Object.entries(body.lists ?? {})) {
          const f = l.filters ?? {};
          lists[name] = {
            ...readConfig(l, userId),
            ranges: l.ranges ?? (l.range ? [l.range as [number, number]] : undefined),
            filters: {
              isDm: f.is_dm,
              isEncrypted: f.is_encrypted,
              isInvite: f.is_invite ?? f.is_invited,
              spaces: f.spaces,
              roomTypes: f.room_types,
              notRoomTypes: f.not_room_types,
              tags: f.tags,
              notTags: f.not_tags,
              roomNameLike: f.room_name_like,
            },
            sort: l.sort,
          } as ListRequest;
        }
        const roomSubscriptions: Record<string, RoomConfig> = {};
        for (const [roomId, config] of Object.entries(body.room_subscriptions ?? {}))
          roomSubscriptions[roomId] = readConfig(config, userId);
        const ext = body.extensions ?? {};
        return slidingSync.sync({
          userId,
          deviceId: auth.deviceId,
          connId: body.conn_id ?? '',
          pos: query.pos ?? body.pos,
          timeoutMs: query.timeout ?? body.timeout,
          setPresence: query.set_presence ?? body.set_presence,
          lists,
          roomSubscriptions,
          unsubscribeRooms: body.unsubscribe_rooms ?? [],
          extensions: {
            toDevice: ext.to_device?.enabled
              ? { enabled: true, since: ext.to_device.since, limit: ext.to_device.limit }
              : undefined,
            e2ee: ext.e2ee?.enabled ? { enabled: true } : undefined,
            accountData: readScope(ext.account_data),
            receipts: readScope(ext.receipts),
            typing: readScope(ext.typing),
          },
          txnId: body.txn_id,
          signal: request.signal,
        });
      },
    }),
  ];
}
