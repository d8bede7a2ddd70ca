/** The push rule and pusher endpoints through the real router (pushrules.yaml, pusher.yaml). */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import specRules from '../../homeserver/push/fixtures/spec-default-rules.json' with { type: 'json' };
import { createTestHomeserver, type TestHomeserver } from '../../testing.ts';

let hs: TestHomeserver;
let token: string;
let userId: string;

beforeEach(async () => {
  hs = await createTestHomeserver();
  ({ accessToken: token, userId } = await hs.createUser('alice'));
});
afterEach(async () => {
  await hs.close();
});

const V3 = '/_matrix/client/v3';
const call = (method: string, path: string, body?: unknown) =>
  hs.call(method, `${V3}${path}`, { token, body });
const rule = (kind: string, id: string, suffix = '') =>
  `/pushrules/global/${kind}/${encodeURIComponent(id)}${suffix}`;

function expectError(
  res: { status: number; body: Record<string, unknown> },
  status: number,
  errcode: string,
) {
  expect({ status: res.status, errcode: res.body.errcode }).toEqual({ status, errcode });
  expect(typeof res.body.error).toBe('string');
}

describe('GET /pushrules/', () => {
  it('returns the whole default ruleset under global, on every prefix and with or without the slash', async () => {
    const res = await call('GET', '/pushrules/');
    expect(res.status).toBe(200);
    const global = res.body.global as Record<string, { rule_id: string }[]>;
    expect(Object.keys(global).sort()).toEqual(['content', 'override', 'room', 'sender', 'underride']);
    expect(global.override?.map((r) => r.rule_id)).toEqual(specRules.override.map((r) => r.rule_id));
    expect(global.underride?.map((r) => r.rule_id)).toEqual(specRules.underride.map((r) => r.rule_id));
    for (const path of ['/_matrix/client/r0/pushrules/', `${V3}/pushrules`]) {
      const other = await hs.call('GET', path, { token });
      expect(other.status).toBe(200);
      expect(other.body).toEqual(res.body);
    }
    const globalOnly = await call('GET', '/pushrules/global/');
    expect(globalOnly.body).toEqual(global);
    expect((await call('GET', '/pushrules/global')).body).toEqual(global);
  });

  it('requires an access token', async () => {
    expectError(await hs.call('GET', `${V3}/pushrules/`), 401, 'M_MISSING_TOKEN');
  });
});

describe('one rule', () => {
  it('creates, reads, updates and deletes a content rule', async () => {
    expect(
      (await call('PUT', rule('content', 'nocake'), { pattern: 'cake*lie', actions: ['notify'] })).status,
    ).toBe(200);
    expect((await call('GET', rule('content', 'nocake'))).body).toEqual({
      rule_id: 'nocake',
      default: false,
      enabled: true,
      actions: ['notify'],
      pattern: 'cake*lie',
    });
    expect((await call('GET', rule('content', 'nocake', '/enabled'))).body).toEqual({ enabled: true });
    expect((await call('PUT', rule('content', 'nocake', '/enabled'), { enabled: false })).status).toBe(200);
    expect((await call('GET', rule('content', 'nocake', '/enabled'))).body).toEqual({ enabled: false });
    const actions = ['notify', { set_tweak: 'sound', value: 'bing' }];
    expect((await call('PUT', rule('content', 'nocake', '/actions'), { actions })).status).toBe(200);
    expect((await call('GET', rule('content', 'nocake', '/actions'))).body).toEqual({ actions });
    expect((await call('DELETE', rule('content', 'nocake'))).status).toBe(200);
    expectError(await call('GET', rule('content', 'nocake')), 404, 'M_NOT_FOUND');
    expectError(await call('DELETE', rule('content', 'nocake')), 404, 'M_NOT_FOUND');
  });

  it('serves the r0 paths too', async () => {
    const r0 = (method: string, path: string, body?: unknown) =>
      hs.call(method, `/_matrix/client/r0${path}`, { token, body });
    expect((await r0('PUT', rule('room', '!dj234r78wl45Gh4D:matrix.org'), { actions: [] })).status).toBe(200);
    expect((await r0('GET', rule('room', '!dj234r78wl45Gh4D:matrix.org'))).body).toEqual({
      rule_id: '!dj234r78wl45Gh4D:matrix.org',
      default: false,
      enabled: true,
      actions: [],
    });
  });

  it('orders override rules with before and after', async () => {
    await call('PUT', rule('override', 'first'), { conditions: [], actions: [] });
    await call('PUT', rule('override', 'second'), { conditions: [], actions: [] });
    expect(
      (await call('PUT', `${rule('override', 'middle')}?before=first`, { conditions: [], actions: [] }))
        .status,
    ).toBe(200);
    expect(
      (await call('PUT', `${rule('override', 'last')}?after=first`, { conditions: [], actions: [] })).status,
    ).toBe(200);
    const override = ((await call('GET', '/pushrules/global/')).body.override as { rule_id: string }[]).map(
      (r) => r.rule_id,
    );
    expect(override.slice(0, 5)).toEqual(['.m.rule.master', 'second', 'middle', 'first', 'last']);
    expectError(
      await call('PUT', `${rule('override', 'x')}?before=.m.rule.master`, { actions: [] }),
      400,
      'M_INVALID_PARAM',
    );
    expectError(
      await call('PUT', `${rule('override', 'x')}?after=unknown`, { actions: [] }),
      400,
      'M_INVALID_PARAM',
    );
  });

  it('changes default rules only through enabled and actions', async () => {
    expect(
      (await call('PUT', rule('override', '.m.rule.master', '/enabled'), { enabled: true })).status,
    ).toBe(200);
    expect((await call('GET', rule('override', '.m.rule.master'))).body).toEqual({
      rule_id: '.m.rule.master',
      default: true,
      enabled: true,
      conditions: [],
      actions: [],
    });
    expect(
      (await call('PUT', rule('underride', '.m.rule.message', '/actions'), { actions: [] })).status,
    ).toBe(200);
    expect((await call('GET', rule('underride', '.m.rule.message', '/actions'))).body).toEqual({
      actions: [],
    });
    expectError(
      await call('PUT', rule('override', '.m.rule.master'), { conditions: [], actions: ['notify'] }),
      400,
      'M_INVALID_PARAM',
    );
    expectError(await call('DELETE', rule('override', '.m.rule.master')), 403, 'M_FORBIDDEN');
    expect((await call('GET', rule('override', '.m.rule.master'))).status).toBe(200);
  });
});

describe('malformed requests', () => {
  it('rejects rule IDs that are reserved or hold slashes, and room/sender rules not named by an ID', async () => {
    expectError(await call('PUT', rule('override', '.mine'), { actions: [] }), 400, 'M_INVALID_PARAM');
    expectError(await call('PUT', rule('override', 'a/b'), { actions: [] }), 400, 'M_INVALID_PARAM');
    expectError(await call('PUT', rule('override', 'a\\b'), { actions: [] }), 400, 'M_INVALID_PARAM');
    expectError(await call('PUT', rule('room', 'not-a-room'), { actions: [] }), 400, 'M_INVALID_PARAM');
    expectError(await call('PUT', rule('sender', 'not-a-user'), { actions: [] }), 400, 'M_INVALID_PARAM');
  });

  it('rejects unknown kinds', async () => {
    expectError(await call('GET', rule('bogus', 'x')), 400, 'M_INVALID_PARAM');
    expectError(await call('PUT', rule('global', 'x'), { actions: [] }), 400, 'M_INVALID_PARAM');
  });

  it('rejects bad bodies with M_BAD_JSON / M_MISSING_PARAM / M_NOT_JSON', async () => {
    expectError(await call('PUT', rule('override', 'r'), {}), 400, 'M_MISSING_PARAM');
    expectError(await call('PUT', rule('override', 'r'), { actions: 'notify' }), 400, 'M_BAD_JSON');
    expectError(await call('PUT', rule('override', 'r'), { actions: ['shout'] }), 400, 'M_BAD_JSON');
    expectError(
      await call('PUT', rule('override', 'r'), { actions: [{ tweak: 'sound' }] }),
      400,
      'M_MISSING_PARAM',
    );
    expectError(await call('PUT', rule('override', 'r'), { actions: [42] }), 400, 'M_BAD_JSON');
    expectError(await call('PUT', rule('content', 'r'), { actions: [] }), 400, 'M_MISSING_PARAM');
    expectError(await call('PUT', rule('content', 'r'), { actions: [], pattern: 7 }), 400, 'M_BAD_JSON');
    expectError(await call('PUT', rule('override', 'r', '/enabled'), { enabled: 'yes' }), 400, 'M_BAD_JSON');
    expectError(
      await call('PUT', rule('underride', '.m.rule.message', '/actions'), { actions: [null] }),
      400,
      'M_BAD_JSON',
    );
    expectError(
      await hs.call('PUT', `${V3}${rule('override', 'r')}`, { token, body: '{not json' }),
      400,
      'M_NOT_JSON',
    );
  });

  it('checks the parameters of each known condition kind, and keeps unknown kinds', async () => {
    const put = (condition: unknown) =>
      call('PUT', rule('override', 'c'), { actions: [], conditions: [condition] });
    expectError(await put('event_match'), 400, 'M_BAD_JSON');
    expectError(await put({ key: 'type', pattern: 'x' }), 400, 'M_MISSING_PARAM');
    expectError(await put({ kind: 'event_match', key: 'type' }), 400, 'M_MISSING_PARAM');
    expectError(await put({ kind: 'event_match', key: 1, pattern: 'x' }), 400, 'M_BAD_JSON');
    expectError(
      await put({ kind: 'event_property_is', key: 'content.x', value: { a: 1 } }),
      400,
      'M_BAD_JSON',
    );
    expectError(await put({ kind: 'event_property_is', key: 'content.x', value: 1.5 }), 400, 'M_BAD_JSON');
    expectError(await put({ kind: 'event_property_contains', key: 'content.x' }), 400, 'M_MISSING_PARAM');
    expectError(await put({ kind: 'room_member_count', is: 'about 2' }), 400, 'M_BAD_JSON');
    expectError(await put({ kind: 'room_member_count', is: 2 }), 400, 'M_BAD_JSON');
    expectError(await put({ kind: 'sender_notification_permission' }), 400, 'M_MISSING_PARAM');
    expect((await call('GET', '/pushrules/global/')).body.override).toHaveLength(specRules.override.length);

    for (const ok of [
      { kind: 'event_property_is', key: 'content.x', value: null },
      { kind: 'room_member_count', is: '>=3' },
      { kind: 'contains_display_name' },
      { kind: 'org.example.future', anything: [1, 2] },
    ]) {
      expect((await put(ok)).status).toBe(200);
      expect((await call('GET', rule('override', 'c'))).body.conditions).toEqual([ok]);
    }
  });

  it('answers M_NOT_FOUND for a rule missing under the given kind, defaults included', async () => {
    expectError(await call('GET', rule('underride', '.m.rule.master', '/enabled')), 404, 'M_NOT_FOUND');
    expectError(
      await call('PUT', rule('content', 'missing', '/actions'), { actions: [] }),
      404,
      'M_NOT_FOUND',
    );
  });
});

describe('m.push_rules reaches /sync', () => {
  it('every change moves the account-data stream position rulesFor reports', async () => {
    const services = hs.internals;
    const before = await services.push.rulesFor(userId);
    await call('PUT', rule('sender', '@spambot:matrix.org'), { actions: [] });
    const after = await services.push.rulesFor(userId);
    expect(after.stream).toBeGreaterThan(before.stream);
    expect(after.global.sender.map((r) => r.rule_id)).toEqual(['@spambot:matrix.org']);
  });
});

describe('pushers', () => {
  const pusher = {
    kind: 'http',
    app_id: 'com.example.app.ios',
    pushkey: 'APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8',
    app_display_name: 'Mat Rix',
    device_display_name: 'iPhone 9',
    profile_tag: 'xxyyzz',
    lang: 'en',
    data: { url: 'https://push-gateway.location.here/_matrix/push/v1/notify', format: 'event_id_only' },
    append: false,
  };

  it('starts empty, stores, replaces and deletes pushers', async () => {
    expect((await call('GET', '/pushers')).body).toEqual({ pushers: [] });
    expect((await call('POST', '/pushers/set', pusher)).status).toBe(200);
    // This test homeserver has no outgoing HTTP (like a browser): pushers are listed as not delivered.
    const { append: _append, ...given } = pusher;
    const shown = { ...given, 'io.hearth.delivered': false };
    expect((await call('GET', '/pushers')).body).toEqual({ pushers: [shown] });
    await call('POST', '/pushers/set', { ...pusher, lang: 'de' });
    expect((await call('GET', '/pushers')).body.pushers).toEqual([{ ...shown, lang: 'de' }]);
    expect(
      (await call('POST', '/pushers/set', { kind: null, app_id: pusher.app_id, pushkey: pusher.pushkey }))
        .status,
    ).toBe(200);
    expect((await call('GET', '/pushers')).body).toEqual({ pushers: [] });
    expect((await hs.call('GET', '/_matrix/client/r0/pushers', { token })).body).toEqual({ pushers: [] });
  });

  it('rejects incomplete or invalid pushers', async () => {
    expectError(await call('POST', '/pushers/set', { app_id: 'a', pushkey: 'k' }), 400, 'M_MISSING_PARAM');
    expectError(
      await call('POST', '/pushers/set', { kind: 'http', app_id: 'a', pushkey: 'k' }),
      400,
      'M_MISSING_PARAM',
    );
    expectError(await call('POST', '/pushers/set', { ...pusher, data: {} }), 400, 'M_MISSING_PARAM');
    expectError(
      await call('POST', '/pushers/set', { ...pusher, data: { url: 'https://gw.example/notify' } }),
      400,
      'M_INVALID_PARAM',
    );
    expectError(await call('POST', '/pushers/set', { ...pusher, kind: 'email' }), 400, 'M_INVALID_PARAM');
    expectError(await call('POST', '/pushers/set', { ...pusher, app_id: 'x'.repeat(65) }), 400, 'M_BAD_JSON');
    expectError(
      await call('POST', '/pushers/set', { ...pusher, pushkey: 'é'.repeat(257) }),
      400,
      'M_BAD_JSON',
    );
    expect((await call('GET', '/pushers')).body).toEqual({ pushers: [] });
  });
});
