import { isIPv6 } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeBase64, encodeBase64Url } from './base64.ts';
import { CoreError } from './errors.ts';
import {
  createEventIdFromRoomId,
  isReservedNamespacedId,
  isValidDeviceId,
  isValidEventId,
  isValidKeyId,
  isValidLocalpart,
  isValidNamespacedId,
  isValidOpaqueId,
  isValidRoomAlias,
  isValidRoomId,
  isValidServerName,
  isValidUserId,
  MAX_ID_BYTES,
  parseDeviceId,
  parseEventId,
  parseKeyId,
  parseRoomAlias,
  parseRoomId,
  parseServerName,
  parseUserId,
  roomIdFromCreateEventId,
  serverNameOf,
  userIdCompliance,
  utf8ByteLength,
} from './identifiers.ts';
import { expectCoreError } from './testing.ts';

/** An ID of exactly `bytes` UTF-8 bytes: sigil + localpart + ":" + server. */
function idOfBytes(sigil: string, bytes: number, server = 'example.org', fill = 'a'): string {
  const fixed = utf8ByteLength(`${sigil}:${server}`);
  return `${sigil}${fill.repeat(bytes - fixed)}:${server}`;
}

// Examples from appendices.md "Server Name".
const SPEC_SERVER_NAMES: [string, { host: string; port?: number; kind: string }][] = [
  ['matrix.org', { host: 'matrix.org', kind: 'dns' }],
  ['matrix.org:8888', { host: 'matrix.org', port: 8888, kind: 'dns' }],
  ['1.2.3.4', { host: '1.2.3.4', kind: 'ipv4' }],
  ['1.2.3.4:1234', { host: '1.2.3.4', port: 1234, kind: 'ipv4' }],
  ['[1234:5678::abcd]', { host: '[1234:5678::abcd]', kind: 'ipv6' }],
  ['[1234:5678::abcd]:5678', { host: '[1234:5678::abcd]', port: 5678, kind: 'ipv6' }],
];

describe('server names', () => {
  it.each(SPEC_SERVER_NAMES)('parses the spec example %s', (name, expected) => {
    expect(parseServerName(name)).toEqual(expected);
    expect(isValidServerName(name)).toBe(true);
  });

  it.each([
    'domain',
    'localhost',
    'MATRIX.ORG', // valid, only discouraged; names are case-sensitive and kept as given
    'a-b.example.org',
    'example.org:1',
    'example.org:65535',
    'example.org:08448', // port = 1*5DIGIT
    '01.2.3.4', // IPv4address = 1*3DIGIT per part
    '255.255.255.255',
    '1.2.3', // not #.#.#.#, so an (all-numeric) dns-name
    '[::]',
    '[::1]',
    '[1:2:3:4:5:6:7:8]',
    '[1:2:3:4:5:6:7::]',
    '[::2:3:4:5:6:7:8]',
    '[::ffff:1.2.3.4]',
    '[1:2:3:4:5:6:1.2.3.4]:8448',
    '[ABCD:ef01::]',
    'a'.repeat(255),
  ])('accepts %s', (name) => {
    expect(isValidServerName(name)).toBe(true);
    expect(() => parseServerName(name)).not.toThrow();
  });

  it('keeps upper case and leading zeros as written', () => {
    expect(parseServerName('MATRIX.ORG:08448')).toEqual({ host: 'MATRIX.ORG', port: 8448, kind: 'dns' });
  });

  it.each([
    ['', /empty/],
    [':8448', /empty hostname/],
    ['matrix.org:', /empty port/],
    ['matrix.org:0', /port 0 is outside 1-65535/],
    ['matrix.org:65536', /port 65536 is outside 1-65535/],
    ['matrix.org:99999', /port 99999 is outside 1-65535/],
    ['matrix.org:123456', /not 1 to 5 digits/],
    ['matrix.org:-1', /not 1 to 5 digits/],
    ['matrix.org:80a', /not 1 to 5 digits/],
    ['matrix.org:80:90', /not 1 to 5 digits/],
    ['exa mple.org', /" " \(U\+0020\) is not allowed in a hostname/],
    ['exa_mple.org', /"_" \(U\+005F\)/],
    ['例え.jp', /"例" \(U\+4F8B\)/],
    ['xn--r8jz45g.jp\u0000', /U\+0000 is not allowed/],
    ['1.2.3.256', /IPv4 part "256" is over 255/],
    ['1.2.3.1234', /more than 3 digits/],
    ['a'.repeat(256), /longer than 255/],
    ['[1234:5678::abcd', /closing "\]"/],
    ['[::1]x', /unexpected "x"/],
    ['[::1]:', /empty port/],
    ['[::1]:65536', /outside 1-65535/],
    ['[]', /2 to 45 characters/],
    ['[:]', /2 to 45 characters/],
    ['[12345::1]', /"12345" is not 1 to 4 hex digits/],
    ['[1::2::3]', /more than one "::"/],
    ['[1:::2]', /more than one "::"/],
    ['[1:2:3:4:5:6:7:8:9]', /8 groups, not 9/],
    ['[1:2:3:4:5:6:7]', /8 groups, not 7/],
    ['[1:2:3:4::5:6:7:8]', /too many groups/],
    ['[:1:2:3:4:5:6:7]', /empty group/],
    ['[1:2:3:4:5:6:7:]', /empty group/],
    ['[::g]', /"g" \(U\+0067\) is not allowed in an IPv6 literal/],
    ['[fe80::1%eth0]', /"%"/],
    ['[1.2.3.4]', /8 groups, not 2/],
    ['[1.2.3.4::]', /may only end/],
    ['[::1.2.3.4:5]', /may only end/],
    ['[::1.2.3.256]', /over 255/],
    ['[::01.2.3.4]', /leading zero/],
    ['[1:2:3:4:5:6:7:1.2.3.4]', /8 groups, not 9/],
    [`[${'1:'.repeat(23)}1]`, /2 to 45 characters/],
  ])('rejects %j', (name, message) => {
    expectCoreError(() => parseServerName(name), 'INVALID_ID', message);
    expect(isValidServerName(name)).toBe(false);
  });

  it('rejects what is not a string with INVALID_ID', () => {
    for (const value of [undefined, null, 8448, {}, ['matrix.org']]) {
      expectCoreError(() => parseServerName(value), 'INVALID_ID', /not a string/);
      expect(isValidServerName(value)).toBe(false);
    }
  });

  it('accepts every IPv4 and IPv6 address and domain fast-check makes', () => {
    fc.assert(
      fc.property(
        fc.ipV4(),
        fc.ipV6(),
        fc.domain(),
        fc.integer({ min: 1, max: 65535 }),
        (v4, v6, dns, port) => {
          expect(parseServerName(v4).kind).toBe('ipv4');
          expect(parseServerName(`[${v6}]:${port}`)).toEqual({ host: `[${v6}]`, port, kind: 'ipv6' });
          expect(parseServerName(`${dns}:${port}`)).toEqual({ host: dns, port, kind: 'dns' });
        },
      ),
    );
  });

  it('agrees with node:net isIPv6 on strings of IPv6 characters', () => {
    const text = fc.string({
      unit: fc.constantFrom('0', '1', 'f', 'A', ':', ':', ':', '.', '2', '5'),
      maxLength: 24,
    });
    const mutatedV6 = fc
      .tuple(fc.ipV6(), fc.nat(), fc.constantFrom('', ':', '::', '.', '0', 'fffff'))
      .map(([v6, at, insert]) => v6.slice(0, at % (v6.length + 1)) + insert + v6.slice(at % (v6.length + 1)));
    fc.assert(
      fc.property(fc.oneof(text, mutatedV6), (candidate) => {
        expect(isValidServerName(`[${candidate}]`)).toBe(isIPv6(candidate));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('user IDs', () => {
  it.each([
    ['@user:matrix.org', 'user', 'matrix.org'],
    ['@john.doe:example.com', 'john.doe', 'example.com'],
    ['@a:domain', 'a', 'domain'],
    ['@u:domain', 'u', 'domain'],
    ['@alice:matrix.org:8888', 'alice', 'matrix.org:8888'],
    ['@alice:[1234:5678::abcd]:5678', 'alice', '[1234:5678::abcd]:5678'],
    ['@a-z0.9_=/+:1.2.3.4', 'a-z0.9_=/+', '1.2.3.4'],
    ['@user:MATRIX.ORG', 'user', 'MATRIX.ORG'], // a different user from @user:matrix.org, but valid
  ])('parses %s', (id, localpart, serverName) => {
    expect(parseUserId(id)).toEqual({ localpart, serverName });
    expect(parseUserId(id, { historical: true })).toEqual({ localpart, serverName });
    expect(isValidUserId(id)).toBe(true);
  });

  it.each([
    ['@USER:matrix.org', /"U" \(U\+0055\).*lower-case/],
    ['@:example.org', /empty localpart/],
    ['@ali ce:example.org', /" " \(U\+0020\)/],
    ['@alice*:example.org', /"\*" \(U\+002A\)/],
    ['@日本:example.org', /"日" \(U\+65E5\)/],
    ['@a\u0001:example.org', /U\+0001/],
    ['@alice!:example.org', /"!"/],
    ['@😀:example.org', /U\+1F600/],
  ])('rejects %j under the strict grammar but accepts it as historical', (id, message) => {
    expectCoreError(() => parseUserId(id), 'INVALID_ID', message);
    expect(isValidUserId(id)).toBe(false);
    expect(isValidUserId(id, { historical: true })).toBe(true);
  });

  it.each([
    ['', /empty/],
    ['alice:example.org', /must start with "@"/],
    ['!alice:example.org', /must start with "@"/],
    ['@alice', /no ":"/],
    ['@alice:', /server name "": empty/],
    ['@alice::8448', /empty hostname/],
    ['@alice:example.org:', /empty port/],
    ['@alice:example.org:99999', /outside 1-65535/],
    ['@alice:exa mple.org', /not allowed in a hostname/],
    ['@a:b:c.org', /port "c.org"/], // no localpart may hold ":", so the server name is "b:c.org"
    ['@a\u0000b:example.org', /NUL/],
    ['@a\ud800b:example.org', /lone surrogate/],
    ['@a\udc00:example.org', /lone surrogate/],
  ])('rejects %j under both grammars', (id, message) => {
    expectCoreError(() => parseUserId(id), 'INVALID_ID', undefined);
    expectCoreError(() => parseUserId(id, { historical: true }), 'INVALID_ID', message);
    expect(isValidUserId(id, { historical: true })).toBe(false);
  });

  it('accepts the historical empty localpart and control characters', () => {
    expect(parseUserId('@:example.org', { historical: true })).toEqual({
      localpart: '',
      serverName: 'example.org',
    });
    expect(parseUserId('@a\u0001\u007f\u2028:example.org', { historical: true }).localpart).toBe(
      'a\u0001\u007f\u2028',
    );
  });

  it('limits user IDs to 255 bytes of UTF-8, not 255 characters', () => {
    const atLimit = idOfBytes('@', MAX_ID_BYTES);
    expect(atLimit.length).toBe(255);
    expect(isValidUserId(atLimit)).toBe(true);
    expectCoreError(
      () => parseUserId(idOfBytes('@', 256)),
      'INVALID_ID',
      /256 bytes long; the limit is 255 bytes/,
    );
    // é is 2 bytes: 126 of them make 1 + 252 + 2 = 255 bytes in 129 characters.
    expect(isValidUserId(`@${'é'.repeat(126)}:a`, { historical: true })).toBe(true);
    expectCoreError(
      () => parseUserId(`@${'é'.repeat(127)}:a`, { historical: true }),
      'INVALID_ID',
      /257 bytes long/,
    );
    // An astral character is 4 bytes but 2 UTF-16 units.
    expect(isValidUserId(`@${'😀'.repeat(63)}:a`, { historical: true })).toBe(true);
    expectCoreError(
      () => parseUserId(`@${'😀'.repeat(63)}a:a`, { historical: true }),
      'INVALID_ID',
      /256 bytes/,
    );
  });

  it('isValidLocalpart follows the same grammars', () => {
    expect(isValidLocalpart('alice.b=c/d+e_f-9')).toBe(true);
    expect(isValidLocalpart('Alice')).toBe(false);
    expect(isValidLocalpart('')).toBe(false);
    expect(isValidLocalpart('', { historical: true })).toBe(true);
    expect(isValidLocalpart('Alice', { historical: true })).toBe(true);
    expect(isValidLocalpart('a:b', { historical: true })).toBe(false);
    expect(isValidLocalpart('a\0b', { historical: true })).toBe(false);
    expect(isValidLocalpart('\ud800', { historical: true })).toBe(false);
    expect(isValidLocalpart(7)).toBe(false);
  });

  it('grades compliance of historical user IDs', () => {
    expect(userIdCompliance('@alice:example.org')).toBe('current');
    expect(userIdCompliance('@Alice!:example.org')).toBe('historical');
    expect(userIdCompliance('@:example.org')).toBe('non-compliant');
    expect(userIdCompliance('@al ice:example.org')).toBe('non-compliant'); // U+0020 is outside U+0021–U+007E
    expect(userIdCompliance('@日本:example.org')).toBe('non-compliant');
    expectCoreError(() => userIdCompliance('@a\0:example.org'), 'INVALID_ID', /NUL/);
  });

  it('accepts every localpart of the strict alphabet', () => {
    const strictChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789._=-/+');
    fc.assert(
      fc.property(
        fc.string({ unit: strictChar, minLength: 1, maxLength: 40 }),
        fc.domain(),
        (localpart, server) => {
          expect(parseUserId(`@${localpart}:${server}`)).toEqual({ localpart, serverName: server });
        },
      ),
    );
  });
});

describe('room IDs', () => {
  // The v12 example of data/api/server-server/definitions/components/room_id_v12.yaml.
  const V12_ROOM_ID = '!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ';

  it.each([
    ['!x:domain', 'x', 'domain'],
    ['!r:domain', 'r', 'domain'],
    ['!opaque_id:example.org', 'opaque_id', 'example.org'],
    ['!AbC123:matrix.org:8448', 'AbC123', 'matrix.org:8448'],
    ['!日本語 \u0001/+=:[::1]', '日本語 \u0001/+=', '[::1]'], // any code point but ":" and NUL
    ['!:example.org', '', 'example.org'], // the grammar sets no minimum
  ])('parses %j', (id, opaque, serverName) => {
    expect(parseRoomId(id)).toEqual({ opaque, serverName });
    expect(parseRoomId(id, { format: 'server' })).toEqual({ opaque, serverName });
    expect(isValidRoomId(id)).toBe(true);
    expect(isValidRoomId(id, { format: 'hash' })).toBe(false);
  });

  it('parses the v12 form, which names no server', () => {
    expect(parseRoomId(V12_ROOM_ID)).toEqual({ opaque: V12_ROOM_ID.slice(1) });
    expect(parseRoomId(V12_ROOM_ID, { format: 'hash' })).toEqual({ opaque: V12_ROOM_ID.slice(1) });
    expectCoreError(() => parseRoomId(V12_ROOM_ID, { format: 'server' }), 'INVALID_ID', /no ":"/);
  });

  it.each([
    ['!abc', {}, /neither "!opaque:server" nor "!" \+ hash: a hash is 43 characters/],
    [V12_ROOM_ID.slice(0, -1), {}, /not 42/],
    [`${V12_ROOM_ID}A`, {}, /not 44/],
    [V12_ROOM_ID.replace('-', '+'), {}, /"\+" \(U\+002B\) is not a URL-safe base64 character/],
    [`${V12_ROOM_ID.slice(0, -1)}R`, {}, /non-zero padding bits/],
    ['!x:domain', { format: 'hash' }, /name no server/],
    ['x:domain', {}, /must start with "!"/],
    ['$x:domain', {}, /must start with "!"/],
    ['!x:', {}, /empty/],
    ['!x:exa mple.org', {}, /not allowed in a hostname/],
    ['!a\u0000b:example.org', {}, /NUL/],
    ['!a\udfff:example.org', {}, /lone surrogate/],
    ['', {}, /empty/],
  ] as const)('rejects %j %j', (id, options, message) => {
    expectCoreError(() => parseRoomId(id, options), 'INVALID_ID', message);
    expect(isValidRoomId(id, options)).toBe(false);
  });

  it('limits room IDs to 255 bytes', () => {
    expect(isValidRoomId(idOfBytes('!', 255))).toBe(true);
    expectCoreError(() => parseRoomId(idOfBytes('!', 256)), 'INVALID_ID', /256 bytes/);
    // 本 is 3 bytes: 1 + 240 + 12 = 253 bytes; one more makes 256.
    expect(isValidRoomId(`!${'本'.repeat(80)}:example.org`)).toBe(true);
    expectCoreError(() => parseRoomId(`!${'本'.repeat(81)}:example.org`), 'INVALID_ID', /256 bytes/);
  });

  it('maps a v12 room ID to its create event ID and back', () => {
    const createEventId = `$${V12_ROOM_ID.slice(1)}`;
    expect(roomIdFromCreateEventId(createEventId)).toBe(V12_ROOM_ID);
    expect(createEventIdFromRoomId(V12_ROOM_ID)).toBe(createEventId);
    expectCoreError(() => roomIdFromCreateEventId('$0:domain'), 'INVALID_ID', /name no server/);
    expectCoreError(() => createEventIdFromRoomId('!x:domain'), 'INVALID_ID', /name no server/);
  });
});

describe('event IDs', () => {
  // rooms/v3.md and rooms/fragments/v4-event-ids.md.
  const V3_EXAMPLE = '$CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW6o';
  const V4_EXAMPLE = '$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg';
  const STD_ONLY = '$CD66HAED5npg6074c6pDtLKal/jVfYb2q4Q3LZgrW6o';

  it('parses the v1/v2 form', () => {
    expect(parseEventId('$0:domain')).toEqual({ opaque: '0', serverName: 'domain' });
    expect(parseEventId('$0:domain', { format: 'server' })).toEqual({ opaque: '0', serverName: 'domain' });
    expect(parseEventId('$abc+/=日:example.org:8448')).toEqual({
      opaque: 'abc+/=日',
      serverName: 'example.org:8448',
    });
    expect(isValidEventId('$0:domain', { format: 'base64' })).toBe(false);
    expect(isValidEventId('$0:domain', { format: 'urlsafe' })).toBe(false);
  });

  it('parses the spec examples of v3 and v4 hash IDs', () => {
    expect(parseEventId(V3_EXAMPLE, { format: 'base64' })).toEqual({ opaque: V3_EXAMPLE.slice(1) });
    expect(parseEventId(V4_EXAMPLE, { format: 'urlsafe' })).toEqual({ opaque: V4_EXAMPLE.slice(1) });
    expect(parseEventId(V3_EXAMPLE)).toEqual({ opaque: V3_EXAMPLE.slice(1) });
    expect(parseEventId(V4_EXAMPLE)).toEqual({ opaque: V4_EXAMPLE.slice(1) });
    expect(parseEventId(STD_ONLY)).toEqual({ opaque: STD_ONLY.slice(1) });
    expectCoreError(
      () => parseEventId(V4_EXAMPLE, { format: 'base64' }),
      'INVALID_ID',
      /"-" \(U\+002D\) is not a standard base64/,
    );
    expectCoreError(
      () => parseEventId(STD_ONLY, { format: 'urlsafe' }),
      'INVALID_ID',
      /"\/" \(U\+002F\) is not a URL-safe/,
    );
    expectCoreError(() => parseEventId(V4_EXAMPLE, { format: 'server' }), 'INVALID_ID', /no ":"/);
  });

  it.each([
    ['$abc', {}, /neither "\$opaque:server" nor "\$" \+ hash: a hash is 43 characters .*not 3/],
    ['$', {}, /not 0/],
    ['$CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW6p', {}, /non-zero padding bits/],
    ['$Rqnc-F-dvnEYJTyHq/iKxU2bZ1CI92-kuZq3a5lr5Zg', {}, /"-" \(U\+002D\) is not a standard/],
    ['$CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW6o=', {}, /not 44/],
    ['$CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW6o:domain', { format: 'urlsafe' }, /name no server/],
    ['CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW6o', {}, /must start with "\$"/],
    ['$0:', {}, /empty/],
    ['$0\u0000:domain', {}, /NUL/],
  ] as const)('rejects %j %j', (id, options, message) => {
    expectCoreError(() => parseEventId(id, options), 'INVALID_ID', message);
    expect(isValidEventId(id, options)).toBe(false);
  });

  it('limits event IDs to 255 bytes', () => {
    expect(isValidEventId(idOfBytes('$', 255))).toBe(true);
    expectCoreError(() => parseEventId(idOfBytes('$', 256)), 'INVALID_ID', /256 bytes/);
  });

  it('accepts the encoding of every 32-byte hash and rejects other lengths', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (hash) => {
        expect(isValidEventId(`$${encodeBase64(hash)}`, { format: 'base64' })).toBe(true);
        expect(isValidEventId(`$${encodeBase64Url(hash)}`, { format: 'urlsafe' })).toBe(true);
        expect(isValidRoomId(`!${encodeBase64Url(hash)}`, { format: 'hash' })).toBe(true);
        expect(isValidEventId(`$${encodeBase64Url(hash.subarray(1))}`)).toBe(false);
      }),
    );
  });
});

describe('room aliases', () => {
  it.each([
    ['#room_alias:domain', 'room_alias', 'domain'],
    ['#somewhere:example.org', 'somewhere', 'example.org'],
    ['#日本語 chat!:example.org:8448', '日本語 chat!', 'example.org:8448'],
    ['#Caps/+=@$!:[::1]', 'Caps/+=@$!', '[::1]'],
  ])('parses %j', (alias, localpart, serverName) => {
    expect(parseRoomAlias(alias)).toEqual({ localpart, serverName });
    expect(isValidRoomAlias(alias)).toBe(true);
  });

  it.each([
    ['#alias', /no ":"/],
    ['alias:example.org', /must start with "#"/],
    ['#a:b:c.org', /port "c.org"/],
    ['#alias:', /empty/],
    ['#a\u0000:example.org', /NUL/],
    ['#a\ud83d:example.org', /lone surrogate/],
    [idOfBytes('#', 256), /256 bytes/],
  ])('rejects %j', (alias, message) => {
    expectCoreError(() => parseRoomAlias(alias), 'INVALID_ID', message);
    expect(isValidRoomAlias(alias)).toBe(false);
  });

  it('accepts 255 bytes', () => {
    expect(isValidRoomAlias(idOfBytes('#', 255))).toBe(true);
  });
});

describe('serverNameOf', () => {
  it.each([
    ['@alice:example.org', 'example.org'],
    ['@Alice:example.org:8448', 'example.org:8448'], // historical user IDs route too
    ['!x:domain', 'domain'],
    ['$0:[::1]:80', '[::1]:80'],
    ['#alias:1.2.3.4', '1.2.3.4'],
    ['!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ', undefined],
    ['$CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW6o', undefined],
  ])('of %s is %s', (id, server) => {
    expect(serverNameOf(id)).toBe(server);
  });

  it('rejects unknown sigils and invalid IDs', () => {
    expectCoreError(() => serverNameOf('+alice:example.org'), 'INVALID_ID', /sigils/);
    expectCoreError(() => serverNameOf(''), 'INVALID_ID', /empty/);
    expectCoreError(() => serverNameOf(null), 'INVALID_ID', /not a string/);
    expectCoreError(() => serverNameOf('@alice'), 'INVALID_ID', /no ":"/);
  });
});

describe('device IDs', () => {
  it.each(['ABCDEFGHIJ', 'JLAFKJWSCS', 'a-b.c_d~e', '日本 device', 'x'.repeat(255)])('accepts %j', (id) => {
    expect(parseDeviceId(id)).toBe(id);
  });

  it.each([
    ['', /empty/],
    ['a\nb', /U\+000A/],
    ['a\u007f', /U\+007F/],
    ['a\ud800', /U\+D800/],
    ['é'.repeat(128), /256 bytes/],
  ])('rejects %j', (id, message) => {
    expectCoreError(() => parseDeviceId(id), 'INVALID_ID', message);
    expect(isValidDeviceId(id)).toBe(false);
  });
});

describe('key IDs', () => {
  it.each([
    ['ed25519:1', 'ed25519', '1'],
    ['ed25519:auto', 'ed25519', 'auto'],
    ['ed25519:p2p', 'ed25519', 'p2p'],
    ['ed25519:policy_server', 'ed25519', 'policy_server'],
  ])('parses the server key ID %s', (id, algorithm, version) => {
    expect(parseKeyId(id, { server: true })).toEqual({ algorithm, version });
    expect(parseKeyId(id)).toEqual({ algorithm, version });
  });

  it.each([
    ['ed25519:JLAFKJWSCS', 'ed25519', 'JLAFKJWSCS'],
    ['signed_curve25519:AAAAHQ', 'signed_curve25519', 'AAAAHQ'],
    ['curve25519:日本', 'curve25519', '日本'],
    [
      'ed25519:nqOvzeuGWT/sRx3h7+MHoInYj3Uk2LD/unI9kDYcHwk',
      'ed25519',
      'nqOvzeuGWT/sRx3h7+MHoInYj3Uk2LD/unI9kDYcHwk',
    ],
    ['ed25519:dev:ice', 'ed25519', 'dev:ice'],
  ])('parses the device/cross-signing key ID %s', (id, algorithm, version) => {
    expect(parseKeyId(id)).toEqual({ algorithm, version });
  });

  it.each([
    'ed25519:nqOvzeuGWT/sRx3h7+MHoInYj3Uk2LD/unI9kDYcHwk',
    'ed25519:dev:ice',
    'ed25519:a-b',
    'ed25519:日本',
  ])('rejects %s as a server key ID', (id) => {
    expectCoreError(
      () => parseKeyId(id, { server: true }),
      'INVALID_ID',
      /a server key version is \[a-zA-Z0-9_\]\+/,
    );
    expect(isValidKeyId(id, { server: true })).toBe(false);
  });

  it.each([
    ['ed25519', /no ":"/],
    ['ed25519:', /empty version/],
    [':abc', /empty algorithm/],
    ['ed 25519:abc', /algorithm is not/],
    ['ed25519:a\nb', /printable/],
    ['', /empty/],
  ])('rejects %j', (id, message) => {
    expectCoreError(() => parseKeyId(id), 'INVALID_ID', message);
    expect(isValidKeyId(id)).toBe(false);
  });
});

describe('namespaced and opaque identifiers', () => {
  it('follows the Common Namespaced Identifier Grammar', () => {
    for (const id of ['m.room.message', 'com.example.identifier', 'a', 'm.login.sso', 'x-1_2.3']) {
      expect(isValidNamespacedId(id)).toBe(true);
    }
    for (const id of ['', 'M.room', '1abc', '.m', 'com.example/x', 'a b', 'ü', 'a'.repeat(256)]) {
      expect(isValidNamespacedId(id)).toBe(false);
    }
    expect(isValidNamespacedId('a'.repeat(255))).toBe(true);
    expect(isReservedNamespacedId('m.room.message')).toBe(true);
    expect(isReservedNamespacedId('com.example')).toBe(false);
  });

  it('follows the Opaque Identifier Grammar', () => {
    expect(isValidOpaqueId('AZaz09-._~')).toBe(true);
    expect(isValidOpaqueId('')).toBe(false);
    expect(isValidOpaqueId('a b')).toBe(false);
    expect(isValidOpaqueId('a/b')).toBe(false);
    expect(isValidOpaqueId('a'.repeat(255))).toBe(true);
    expect(isValidOpaqueId('a'.repeat(256))).toBe(false);
    expect(isValidOpaqueId('a'.repeat(64), 32)).toBe(false);
  });
});

describe('bad input never escapes as another exception', () => {
  const parsers: ((input: unknown) => unknown)[] = [
    parseServerName,
    (x) => parseUserId(x),
    (x) => parseUserId(x, { historical: true }),
    (x) => parseRoomId(x),
    (x) => parseRoomId(x, { format: 'hash' }),
    (x) => parseEventId(x),
    (x) => parseEventId(x, { format: 'base64' }),
    parseRoomAlias,
    serverNameOf,
    parseDeviceId,
    (x) => parseKeyId(x),
    (x) => parseKeyId(x, { server: true }),
    userIdCompliance,
    roomIdFromCreateEventId,
    createEventIdFromRoomId,
  ];

  it('throws only CoreError INVALID_ID, for any value or string', () => {
    const sigilled = fc
      .tuple(fc.constantFrom('@', '!', '$', '#', '', '['), fc.string({ unit: 'binary', maxLength: 300 }))
      .map(([sigil, rest]) => sigil + rest);
    const lone = fc.string({ unit: fc.constantFrom('\ud800', '\udc00', ':', 'a', '@', '[', ']', '.', '1') });
    fc.assert(
      fc.property(fc.oneof(fc.anything(), sigilled, lone), (input) => {
        for (const parse of parsers) {
          try {
            parse(input);
          } catch (err) {
            expect(err).toBeInstanceOf(CoreError);
            expect((err as CoreError).code).toBe('INVALID_ID');
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
