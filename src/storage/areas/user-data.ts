/**
 * Per-user data: account data (client-server-api "Client Config"), filters ("Filtering"),
 * push rules ("Push Rules": only the user's own rules and overrides of server-default ones
 * are kept; the homeserver merges the defaults), profiles ("Profiles").
 */
import type { JsonObject, JsonValue } from '../../core/canonical-json.ts';
import type { Engine, Row } from '../engine.ts';
import type { AccountDataEntry, PushRuleRecord, PushSettings, UserDataStore } from '../store.ts';
import { invalid, KeptReads, nextPosition, requirePosition, requireString } from './common.ts';

const KIND_ORDER: readonly PushRuleRecord['kind'][] = ['override', 'content', 'room', 'sender', 'underride'];

function toPushRule(row: Row): PushRuleRecord {
  return {
    kind: row.kind as PushRuleRecord['kind'],
    ruleId: row.rule_id as string,
    priority: row.priority as number,
    rule: (row.rule as JsonObject | null) ?? null,
    enabled: (row.enabled as boolean | null) ?? null,
    actions: (row.actions as JsonValue[] | null) ?? null,
  };
}

/** The account data type `pushSettings` carries beside the rules (modules/ignore_users.md). */
const IGNORED_USER_LIST = 'm.ignored_user_list';

/** Users whose push settings are kept; past this the least recently read are dropped. */
const PUSH_SETTINGS_CACHED = 10_000;

/**
 * `pushSettings`' write-through cache (`KeptReads`): a write of a user's rules or ignore list
 * drops their entry before and after its transaction (`writing`); another store's write of
 * them drops every entry once a read finds the `push` mark moved (`CacheMarks`).
 */
export class PushSettingsCache extends KeptReads<PushSettings> {
  constructor() {
    super(PUSH_SETTINGS_CACHED);
  }
}

function sortRules(rules: PushRuleRecord[]): PushRuleRecord[] {
  return rules.sort(
    (a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || b.priority - a.priority,
  );
}

export function userDataStore(engine: Engine, cache = new PushSettingsCache()): UserDataStore {
  return {
    async getAccountData(userId, type, roomId) {
      const row = await engine.read(['account_data'], (tx) =>
        tx.get('account_data', [userId, roomId ?? '', type]),
      );
      return (row?.content as JsonObject | undefined) ?? null;
    },

    async setAccountData(userId, type, content, roomId) {
      requireString(type, 'type');
      if (roomId !== undefined) requireString(roomId, 'roomId');
      const write = () =>
        engine.write(['account_data', 'streams'], async (tx) => {
          const stream = await nextPosition(tx, 'account_data');
          await tx.put('account_data', { user_id: userId, room_id: roomId ?? '', type, content, stream });
          return stream;
        });
      return type === IGNORED_USER_LIST && roomId === undefined ? cache.writing(userId, write) : write();
    },

    async accountDataSince(userId, from, to) {
      const rows = await engine.read(['account_data'], (tx) =>
        tx.query('account_data', {
          index: '[user_id+stream]',
          prefix: [userId],
          lower: [requirePosition(from, 'from')],
          lowerOpen: true,
          ...(to === undefined ? {} : { upper: [requirePosition(to, 'to')] }),
        }),
      );
      return rows.map(
        (row): AccountDataEntry => ({
          roomId: row.room_id === '' ? null : (row.room_id as string),
          type: row.type as string,
          content: row.content as JsonObject,
          stream: row.stream as number,
        }),
      );
    },

    createFilter(userId, filter) {
      return engine.write(['filters', 'streams'], async (tx) => {
        const filterId = String(await nextPosition(tx, 'filters'));
        await tx.insert('filters', { user_id: userId, filter_id: filterId, filter });
        return filterId;
      });
    },

    async getFilter(userId, filterId) {
      const row = await engine.read(['filters'], (tx) => tx.get('filters', [userId, filterId]));
      return (row?.filter as JsonObject | undefined) ?? null;
    },

    async pushRules(userId) {
      const [rows, version] = await engine.read(['push_rules', 'push_rules_stream'], async (tx) => [
        await tx.query('push_rules', { prefix: [userId] }),
        await tx.get('push_rules_stream', userId),
      ]);
      return { rules: sortRules(rows.map(toPushRule)), stream: (version?.stream as number | undefined) ?? 0 };
    },

    async pushSettings(userIds) {
      const found = new Map<string, PushSettings>();
      const missing: string[] = [];
      for (const userId of new Set(userIds)) {
        const cached = cache.get(userId);
        if (cached) found.set(userId, cached);
        else missing.push(userId);
      }
      if (missing.length === 0) return found;
      const startedAt = cache.begin();
      const read = await engine.read(['push_rules', 'account_data'], async (tx) => {
        // Requests run in order within the transaction: issue them all, then wait.
        const [rules, ignored] = await Promise.all([
          Promise.all(missing.map((userId) => tx.query('push_rules', { prefix: [userId] }))),
          tx.getMany(
            'account_data',
            missing.map((userId) => [userId, '', IGNORED_USER_LIST]),
          ),
        ]);
        return { rules, ignored };
      });
      for (const [i, userId] of missing.entries()) {
        const settings: PushSettings = {
          rules: sortRules((read.rules[i] ?? []).map(toPushRule)),
          ignoredUsers: (read.ignored[i]?.content as JsonObject | undefined) ?? null,
        };
        cache.set(userId, settings, startedAt);
        found.set(userId, settings);
      }
      return found;
    },

    async putPushRule(userId, rule) {
      if (!KIND_ORDER.includes(rule?.kind)) throw invalid(`unknown push rule kind ${String(rule?.kind)}`);
      requireString(rule.ruleId, 'ruleId');
      return cache.writing(userId, () =>
        engine.write(['push_rules', 'push_rules_stream', 'streams'], async (tx) => {
          await tx.put('push_rules', {
            user_id: userId,
            kind: rule.kind,
            rule_id: rule.ruleId,
            priority: rule.priority,
            rule: rule.rule,
            enabled: rule.enabled,
            actions: rule.actions,
          });
          // Push rules reach clients as `m.push_rules` account data: a change moves that stream.
          const stream = await nextPosition(tx, 'account_data');
          await tx.put('push_rules_stream', { user_id: userId, stream });
          return stream;
        }),
      );
    },

    deletePushRule(userId, kind, ruleId) {
      return cache.writing(userId, () =>
        engine.write(['push_rules', 'push_rules_stream', 'streams'], async (tx) => {
          if (!(await tx.get('push_rules', [userId, kind, ruleId]))) return null;
          await tx.delete('push_rules', [userId, kind, ruleId]);
          const stream = await nextPosition(tx, 'account_data');
          await tx.put('push_rules_stream', { user_id: userId, stream });
          return stream;
        }),
      );
    },

    async getProfile(userId) {
      const row = await engine.read(['profiles'], (tx) => tx.get('profiles', userId));
      return (row?.fields as JsonObject | undefined) ?? null;
    },

    async getProfiles(userIds) {
      const rows = await engine.read(['profiles'], (tx) => tx.getMany('profiles', [...userIds]));
      const profiles = new Map<string, JsonObject>();
      rows.forEach((row, i) => {
        if (row?.fields) profiles.set(userIds[i] as string, row.fields as JsonObject);
      });
      return profiles;
    },

    updateProfile(userId, patch) {
      return engine.write(['profiles'], async (tx) => {
        const row = await tx.get('profiles', userId);
        const fields: JsonObject = { ...((row?.fields as JsonObject | undefined) ?? {}) };
        for (const [key, value] of Object.entries(patch)) {
          if (value === null) delete fields[key];
          else fields[key] = value;
        }
        await tx.put('profiles', { user_id: userId, fields });
        return fields;
      });
    },

    async slidingSyncConnection(userId, deviceId, connId, version) {
      const row = await engine.read(['sliding_sync_connections'], (tx) =>
        tx.get('sliding_sync_connections', [userId, deviceId, connId, requirePosition(version, 'version')]),
      );
      return (row?.state as JsonObject | undefined) ?? null;
    },

    saveSlidingSyncConnection(userId, deviceId, connId, state, confirmed) {
      requirePosition(confirmed, 'confirmed');
      const prefix = [userId, deviceId, connId];
      return engine.write(['sliding_sync_connections'], async (tx) => {
        const [last] = await tx.query('sliding_sync_connections', { prefix, reverse: true, limit: 1 });
        const version = ((last?.version as number | undefined) ?? 0) + 1;
        if (confirmed > 0)
          await tx.deleteRange('sliding_sync_connections', { prefix, upper: [confirmed], upperOpen: true });
        await tx.insert('sliding_sync_connections', {
          user_id: userId,
          device_id: deviceId,
          conn_id: connId,
          version,
          state,
        });
        return version;
      });
    },
  };
}
