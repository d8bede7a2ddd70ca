/**
 * Push rules and pushers — client-server-api/modules/push.md "Push Rules: API" and "Client
 * behaviour" (data/api/client-server/pushrules.yaml, pusher.yaml).
 *
 * `GET /notifications` (notifications.yaml) is not served yet: the store keeps the push
 * actions of each event for the unread counts but has no query listing them, so it answers
 * the router's `M_UNRECOGNIZED`.
 */

import {
  type PushAction,
  type PushCondition,
  type PushRuleKind,
  parseMemberCount,
  RULE_KINDS,
} from '../../homeserver/push/index.ts';
import type { Services } from '../../homeserver/services.ts';
import { type Endpoint, endpoint, q, v } from '../endpoint.ts';
import { invalid, type Validator } from '../validate.ts';

const kindParam = v.enum(RULE_KINDS as readonly PushRuleKind[]);

/** "notify", and the historical actions the server accepts and strips ("Historical Actions"). */
const STRING_ACTIONS: ReadonlySet<string> = new Set(['notify', 'dont_notify', 'coalesce']);

const tweak = v.object({ set_tweak: v.string() }, { unknownKeys: 'keep' });

/** An action: one of the string actions, or a `{ "set_tweak": …, "value": … }` object ("Actions"). */
const action: Validator<PushAction> = {
  expected: 'a push action',
  parse(value, path, source) {
    if (typeof value === 'string') {
      if (!STRING_ACTIONS.has(value))
        invalid(path, source, `unknown action ${JSON.stringify(value.slice(0, 40))}`);
      return value;
    }
    return tweak.parse(value, path, source) as PushAction;
  },
};

const actions = v.array(action, { max: 64 });

/** `event_property_is` / `_contains` values: "non-compound canonical JSON values". */
const scalar = v.union(v.string(), v.int(), v.bool(), v.literal(null));

const keep = { unknownKeys: 'keep' } as const;

/** The parameters each condition kind requires ("Conditions", push_condition.yaml). */
const CONDITIONS: Readonly<Record<string, Validator<unknown>>> = {
  event_match: v.object({ kind: v.string(), key: v.string(), pattern: v.string() }, keep),
  event_property_is: v.object({ kind: v.string(), key: v.string(), value: scalar }, keep),
  event_property_contains: v.object({ kind: v.string(), key: v.string(), value: scalar }, keep),
  contains_display_name: v.object({ kind: v.string() }, keep),
  room_member_count: v.object(
    {
      kind: v.string(),
      is: v.refine(v.string(), (is) =>
        parseMemberCount(is)
          ? undefined
          : 'must be a decimal integer, optionally prefixed by ==, <, >, >= or <=',
      ),
    },
    keep,
  ),
  sender_notification_permission: v.object({ kind: v.string(), key: v.string() }, keep),
};

const anyCondition = v.object({ kind: v.string() }, keep);

/**
 * A condition: known kinds must carry their parameters; an unknown kind is kept as given,
 * since "Unrecognised conditions MUST NOT match any events" makes it a valid, inert rule.
 */
const condition: Validator<PushCondition> = {
  expected: 'a push condition',
  parse(value, path, source) {
    const { kind } = anyCondition.parse(value, path, source);
    const known = Object.hasOwn(CONDITIONS, kind) ? CONDITIONS[kind] : undefined;
    return (known ?? anyCondition).parse(value, path, source) as PushCondition;
  },
};

export function pushRulesEndpoints(services: Services): Endpoint[] {
  const { push } = services;
  return [
    endpoint({
      // GET /_matrix/client/v3/pushrules/
      method: 'GET',
      path: '/pushrules/',
      versions: ['r0', 'v3'],
      auth: 'required',
      spec: 'client-server-api/#get_matrixclientv3pushrules',
      handler: async ({ auth }) => ({ global: (await push.rulesFor(auth.userId)).global }),
    }),
    endpoint({
      // GET /_matrix/client/v3/pushrules/global/
      method: 'GET',
      path: '/pushrules/global/',
      versions: ['r0', 'v3'],
      auth: 'required',
      spec: 'client-server-api/#get_matrixclientv3pushrulesglobal',
      handler: async ({ auth }) => (await push.rulesFor(auth.userId)).global,
    }),
    endpoint({
      // GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}
      method: 'GET',
      path: '/pushrules/global/{kind}/{ruleId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      params: { kind: kindParam },
      spec: 'client-server-api/#get_matrixclientv3pushrulesglobalkindruleid',
      handler: async ({ params, auth }) =>
        push.getRule(auth.userId, params.kind as PushRuleKind, params.ruleId),
    }),
    endpoint({
      // PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}
      method: 'PUT',
      path: '/pushrules/global/{kind}/{ruleId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      params: { kind: kindParam },
      query: q.object({ before: q.optional(q.string({ min: 1 })), after: q.optional(q.string({ min: 1 })) }),
      body: v.object({
        actions,
        conditions: v.optional(v.array(condition, { max: 64 })),
        pattern: v.optional(v.string()),
      }),
      spec: 'client-server-api/#put_matrixclientv3pushrulesglobalkindruleid',
      handler: async ({ params, query, body, auth }) => {
        await push.putRule(auth.userId, params.kind as PushRuleKind, params.ruleId, body, query);
        return {};
      },
    }),
    endpoint({
      // DELETE /_matrix/client/v3/pushrules/global/{kind}/{ruleId}
      method: 'DELETE',
      path: '/pushrules/global/{kind}/{ruleId}',
      versions: ['r0', 'v3'],
      auth: 'required',
      params: { kind: kindParam },
      spec: 'client-server-api/#delete_matrixclientv3pushrulesglobalkindruleid',
      handler: async ({ params, auth }) => {
        await push.deleteRule(auth.userId, params.kind as PushRuleKind, params.ruleId);
        return {};
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled
      method: 'GET',
      path: '/pushrules/global/{kind}/{ruleId}/enabled',
      versions: ['r0', 'v3'],
      auth: 'required',
      params: { kind: kindParam },
      spec: 'client-server-api/#get_matrixclientv3pushrulesglobalkindruleidenabled',
      handler: async ({ params, auth }) => {
        const rule = await push.getRule(auth.userId, params.kind as PushRuleKind, params.ruleId);
        return { enabled: rule.enabled };
      },
    }),
    endpoint({
      // PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled
      method: 'PUT',
      path: '/pushrules/global/{kind}/{ruleId}/enabled',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      params: { kind: kindParam },
      body: v.object({ enabled: v.bool() }),
      spec: 'client-server-api/#put_matrixclientv3pushrulesglobalkindruleidenabled',
      handler: async ({ params, body, auth }) => {
        await push.setEnabled(auth.userId, params.kind as PushRuleKind, params.ruleId, body.enabled);
        return {};
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions
      method: 'GET',
      path: '/pushrules/global/{kind}/{ruleId}/actions',
      versions: ['r0', 'v3'],
      auth: 'required',
      params: { kind: kindParam },
      spec: 'client-server-api/#get_matrixclientv3pushrulesglobalkindruleidactions',
      handler: async ({ params, auth }) => {
        const rule = await push.getRule(auth.userId, params.kind as PushRuleKind, params.ruleId);
        return { actions: rule.actions };
      },
    }),
    endpoint({
      // PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions
      method: 'PUT',
      path: '/pushrules/global/{kind}/{ruleId}/actions',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      params: { kind: kindParam },
      body: v.object({ actions }),
      spec: 'client-server-api/#put_matrixclientv3pushrulesglobalkindruleidactions',
      handler: async ({ params, body, auth }) => {
        await push.setActions(auth.userId, params.kind as PushRuleKind, params.ruleId, body.actions);
        return {};
      },
    }),
    endpoint({
      // GET /_matrix/client/v3/pushers
      method: 'GET',
      path: '/pushers',
      versions: ['r0', 'v3'],
      auth: 'required',
      spec: 'client-server-api/#get_matrixclientv3pushers',
      handler: async ({ auth }) => {
        const pushers = await push.pushers(auth.userId);
        // A host without outgoing HTTP (a browser) keeps pushers but cannot deliver them:
        // said on each, under this server's namespace.
        if (services.config.pushDelivery) return { pushers };
        return { pushers: pushers.map((p) => ({ ...p, 'io.hearth.delivered': false })) };
      },
    }),
    endpoint({
      // POST /_matrix/client/v3/pushers/set
      method: 'POST',
      path: '/pushers/set',
      versions: ['r0', 'v3'],
      auth: 'required',
      rateLimit: 'default',
      body: v.object({
        kind: v.nullable(v.string()),
        app_id: v.string({ min: 1 }),
        pushkey: v.string({ min: 1 }),
        app_display_name: v.optional(v.string()),
        device_display_name: v.optional(v.string()),
        profile_tag: v.optional(v.string()),
        lang: v.optional(v.string()),
        data: v.optional(v.jsonObject()),
        append: v.optional(v.bool()),
      }),
      spec: 'client-server-api/#post_matrixclientv3pushersset',
      handler: async ({ body, auth }) => {
        await push.setPusher(auth.userId, body);
        return {};
      },
    }),
  ];
}
