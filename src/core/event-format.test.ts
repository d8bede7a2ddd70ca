import { describe, expect, it } from 'vitest';
import { isCoreError } from './errors.ts';
import {
  eventSizeBytes,
  MAX_AUTH_EVENTS,
  MAX_ID_BYTES,
  MAX_PDU_BYTES,
  MAX_PREV_EVENTS,
  validatePdu,
} from './event-format.ts';
import examples from './fixtures/events/spec-pdu-examples.json' with { type: 'json' };
import type { Pdu } from './pdu.ts';
import { getRoomVersion, type RoomVersion, roomVersions } from './room-versions.ts';

type Json = Record<string, unknown>;
const ALL = Object.keys(roomVersions);

/** A well-formed PDU of the version (references in its format, v1/v2 with an event_id). */
function goodPdu(version: RoomVersion): Json {
  const ref = (id: string) =>
    version.eventIdFormat === 'server' ? [`${id}:example.org`, { sha256: 'abc' }] : id;
  return {
    ...(version.eventIdFormat === 'server' ? { event_id: '$ev:example.org' } : {}),
    room_id: version.roomIdFromCreateEvent
      ? '!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ'
      : '!room:example.org',
    sender: '@alice:example.org',
    origin_server_ts: 1_700_000_000_000,
    type: 'm.room.message',
    content: { body: 'hi', msgtype: 'm.text' },
    prev_events: [ref('$prev')],
    auth_events: [ref('$create'), ref('$member')],
    depth: 5,
    hashes: { sha256: 'aGFzaA' },
    signatures: { 'example.org': { 'ed25519:a': 'c2ln' } },
    unsigned: { age: 1 },
  };
}

function rejection(json: unknown, version: RoomVersion): { code: string; message: string } {
  try {
    validatePdu(json, version);
  } catch (err) {
    if (!isCoreError(err)) throw new Error(`not a CoreError: ${String(err)}`);
    return { code: err.code, message: err.message };
  }
  throw new Error('accepted');
}

function withField(version: RoomVersion, path: string, value: unknown): Json {
  const pdu = structuredClone(goodPdu(version));
  const keys = path.split('.');
  let target = pdu;
  for (const key of keys.slice(0, -1)) target = target[key] as Json;
  const last = keys.at(-1) as string;
  if (value === undefined) delete target[last];
  else target[last] = value;
  return pdu;
}

describe('validatePdu: well-formed events', () => {
  it.each(ALL)('accepts a well-formed v%s event and returns it unchanged', (id) => {
    const version = getRoomVersion(id);
    const pdu = goodPdu(version);
    const copy = structuredClone(pdu);
    expect(validatePdu(pdu, version)).toBe(pdu);
    expect(pdu).toEqual(copy);
  });

  for (const example of examples.cases) {
    it.each(example.versions)(`accepts the spec example ${example.file} in v%s`, (id) => {
      expect(() => validatePdu(example.pdu, getRoomVersion(id))).not.toThrow();
    });
  }

  it('accepts a v12 create event without room_id, but not a v11 one or another v12 event type', () => {
    const v12 = getRoomVersion('12');
    const create = { ...withField(v12, 'room_id', undefined), type: 'm.room.create', state_key: '' };
    expect(validatePdu(create, v12)).toBe(create);
    const v11 = getRoomVersion('11');
    expect(rejection({ ...withField(v11, 'room_id', undefined), type: 'm.room.create' }, v11)).toEqual({
      code: 'BAD_EVENT',
      message: 'invalid PDU: "room_id" is missing',
    });
    expect(rejection(withField(v12, 'room_id', undefined), v12).message).toBe(
      'invalid PDU: "room_id" is missing',
    );
  });

  it('ignores an event_id carried by a v3+ event (it is computed, never trusted)', () => {
    const v4 = getRoomVersion('4');
    expect(() => validatePdu({ ...goodPdu(v4), event_id: 42 }, v4)).not.toThrow();
  });
});

describe('validatePdu: each malformed field is named', () => {
  const v6 = getRoomVersion('6');
  const cases: [string, unknown, string, string][] = [
    ['sender', undefined, 'BAD_EVENT', '"sender" is missing'],
    ['sender', 7, 'BAD_EVENT', '"sender" must be a string, got the number 7'],
    ['sender', 'alice', 'BAD_EVENT', '"sender" must be a user ID'],
    ['type', undefined, 'BAD_EVENT', '"type" is missing'],
    ['type', ['m.room.message'], 'BAD_EVENT', '"type" must be a string, got an array'],
    ['room_id', undefined, 'BAD_EVENT', '"room_id" is missing'],
    ['room_id', '#alias:example.org', 'BAD_EVENT', '"room_id" must be a room ID'],
    ['state_key', 0, 'BAD_EVENT', '"state_key" must be a string, got the number 0'],
    ['origin_server_ts', undefined, 'BAD_EVENT', '"origin_server_ts" is missing'],
    [
      'origin_server_ts',
      '1700000000000',
      'BAD_EVENT',
      '"origin_server_ts" must be an integer, got the string',
    ],
    ['depth', undefined, 'BAD_EVENT', '"depth" is missing'],
    ['depth', -1, 'BAD_EVENT', '"depth" must be between 0 and 9007199254740991, got -1'],
    ['depth', 2 ** 53, 'BAD_EVENT', '"depth" must be between 0 and 9007199254740991, got 9007199254740992'],
    ['depth', 1.5, 'BAD_EVENT', '"depth" must be an integer, got the number 1.5'],
    ['depth', null, 'BAD_EVENT', '"depth" must be an integer, got null'],
    ['prev_events', undefined, 'BAD_EVENT', '"prev_events" is missing'],
    ['prev_events', {}, 'BAD_EVENT', '"prev_events" must be an array, got an object'],
    ['auth_events', undefined, 'BAD_EVENT', '"auth_events" is missing'],
    ['auth_events', ['$ok', 5], 'BAD_EVENT', '"auth_events[1]" must be an event ID string in room version 6'],
    ['auth_events', ['not-an-id'], 'BAD_EVENT', '"auth_events[0]" must be an event ID'],
    ['content', undefined, 'BAD_EVENT', '"content" is missing'],
    ['content', 'text', 'BAD_EVENT', '"content" must be an object, got the string "text"'],
    ['content', [], 'BAD_EVENT', '"content" must be an object, got an array'],
    ['hashes', undefined, 'BAD_EVENT', '"hashes" is missing'],
    ['hashes', {}, 'BAD_EVENT', '"hashes.sha256" must be a string, got undefined'],
    ['hashes.sha256', 5, 'BAD_EVENT', '"hashes.sha256" must be a string, got the number 5'],
    ['signatures', undefined, 'BAD_EVENT', '"signatures" is missing'],
    ['signatures', { 'example.org': 'sig' }, 'BAD_EVENT', '"signatures.example.org" must be an object'],
    [
      'signatures',
      { 'example.org': { 'ed25519:a': 1 } },
      'BAD_EVENT',
      '"signatures.example.org.ed25519:a" must be a string',
    ],
    ['unsigned', [], 'BAD_EVENT', '"unsigned" must be an object, got an array'],
    ['redacts', 5, 'BAD_EVENT', '"redacts" must be a string, got the number 5'],
  ];
  it.each(cases)('%s = %j → %s %s', (path, value, code, message) => {
    const got = rejection(withField(v6, path, value), v6);
    expect(got.code).toBe(code);
    expect(got.message).toContain(message);
  });

  it('rejects what is not a JSON object', () => {
    for (const json of [null, [], 'pdu', 3]) expect(rejection(json, v6).code).toBe('BAD_EVENT');
    expect(rejection([], v6).message).toBe('invalid PDU: a PDU must be a JSON object, got an array');
  });

  it('v11+ no longer reads a top-level `redacts`', () => {
    const v11 = getRoomVersion('11');
    expect(() => validatePdu(withField(v11, 'redacts', 5), v11)).not.toThrow();
  });

  it('v1/v2 need an event_id naming a server', () => {
    const v1 = getRoomVersion('1');
    expect(rejection(withField(v1, 'event_id', undefined), v1).message).toBe(
      'invalid PDU: "event_id" is missing',
    );
    expect(rejection(withField(v1, 'event_id', '$noserver'), v1).message).toContain(
      '"event_id" must be an event ID',
    );
  });

  it('v1/v2 references are [id, hash] pairs; v3+ references are bare IDs', () => {
    const v1 = getRoomVersion('2');
    const v3 = getRoomVersion('3');
    expect(rejection(withField(v1, 'prev_events', ['$a:example.org']), v1)).toEqual({
      code: 'BAD_EVENT',
      message:
        'invalid PDU: "prev_events[0]" must be an [event_id, {"sha256": hash}] pair in room version 2, got the string "$a:example.org"',
    });
    expect(rejection(withField(v1, 'auth_events', [['$a:example.org']]), v1).message).toContain(
      '"auth_events[0]" must be an',
    );
    expect(
      rejection(withField(v1, 'auth_events', [['$a:example.org', { sha256: 1 }]]), v1).message,
    ).toContain('"auth_events[0][1].sha256" must be a string');
    expect(rejection(withField(v3, 'prev_events', [['$a:example.org', { sha256: 'x' }]]), v3)).toEqual({
      code: 'BAD_EVENT',
      message: 'invalid PDU: "prev_events[0]" must be an event ID string in room version 3, got an array',
    });
  });

  it(`allows at most ${MAX_PREV_EVENTS} prev_events and ${MAX_AUTH_EVENTS} auth_events`, () => {
    const ids = (n: number) => Array.from({ length: n }, (_, i) => `$e${i}`);
    expect(() => validatePdu(withField(v6, 'prev_events', ids(MAX_PREV_EVENTS)), v6)).not.toThrow();
    expect(rejection(withField(v6, 'prev_events', ids(MAX_PREV_EVENTS + 1)), v6).message).toContain(
      '"prev_events" has 21 entries, more than the 20 allowed',
    );
    expect(() => validatePdu(withField(v6, 'auth_events', ids(MAX_AUTH_EVENTS)), v6)).not.toThrow();
    expect(rejection(withField(v6, 'auth_events', ids(MAX_AUTH_EVENTS + 1)), v6).message).toContain(
      '"auth_events" has 11 entries',
    );
  });
});

describe('validatePdu: size limits', () => {
  const v10 = getRoomVersion('10');
  const long = (bytes: number) => 'x'.repeat(bytes);

  it.each([
    ['sender', (n: number) => `@${long(n - 13)}:example.org`],
    ['room_id', (n: number) => `!${long(n - 13)}:example.org`],
    ['type', (n: number) => long(n)],
    ['state_key', (n: number) => long(n)],
  ])(`%s: ${MAX_ID_BYTES} bytes pass, ${MAX_ID_BYTES + 1} are TOO_LARGE`, (field, make) => {
    expect(Buffer.byteLength(make(255))).toBe(255);
    expect(() => validatePdu(withField(v10, field, make(255)), v10)).not.toThrow();
    expect(rejection(withField(v10, field, make(256)), v10)).toEqual({
      code: 'TOO_LARGE',
      message: `invalid PDU: "${field}" is 256 bytes, over the limit of 255`,
    });
  });

  it('counts bytes, not characters', () => {
    const key = 'é'.repeat(128); // 128 characters, 256 bytes
    expect(rejection(withField(v10, 'state_key', key), v10).code).toBe('TOO_LARGE');
    const emoji = '🌍'.repeat(64); // 128 UTF-16 units, 256 bytes
    expect(rejection(withField(v10, 'type', emoji), v10).message).toContain('"type" is 256 bytes');
  });

  it('limits a v1 event_id and every referenced event ID to 255 bytes', () => {
    const v1 = getRoomVersion('1');
    const id = `$${long(243)}:example.org`;
    expect(Buffer.byteLength(id)).toBe(256);
    expect(rejection(withField(v1, 'event_id', id), v1).message).toContain('"event_id" is 256 bytes');
    expect(rejection(withField(v10, 'prev_events', [`$${long(255)}`]), v10).message).toContain(
      '"prev_events[0]" is 256 bytes',
    );
  });

  it(`accepts an event of exactly ${MAX_PDU_BYTES} bytes and rejects one byte more`, () => {
    const pdu = goodPdu(v10);
    const base = eventSizeBytes(pdu as Pdu, v10);
    const exact = { ...pdu, content: { body: long(MAX_PDU_BYTES - base + 'hi'.length), msgtype: 'm.text' } };
    expect(eventSizeBytes(exact as unknown as Pdu, v10)).toBe(MAX_PDU_BYTES);
    expect(() => validatePdu(exact, v10)).not.toThrow();
    const over = { ...exact, content: { ...exact.content, body: `${exact.content.body}x` } };
    expect(rejection(over, v10)).toEqual({
      code: 'TOO_LARGE',
      message: 'invalid PDU: the event is 65537 bytes of canonical JSON, over the limit of 65536',
    });
  });

  it('measures the wire form: signatures count, a v3+ event_id does not', () => {
    const v4 = getRoomVersion('4');
    const pdu = goodPdu(v4) as Pdu;
    const size = eventSizeBytes(pdu, v4);
    expect(size).toBe(Buffer.byteLength(JSON.stringify(sortKeys(pdu))));
    expect(eventSizeBytes({ ...pdu, event_id: '$xyz' }, v4)).toBe(size);
    const v1 = getRoomVersion('1');
    const v1pdu = goodPdu(v1) as Pdu;
    expect(eventSizeBytes(v1pdu, v1)).toBe(Buffer.byteLength(JSON.stringify(sortKeys(v1pdu))));
  });
});

describe('validatePdu: canonical JSON by version', () => {
  it.each(['1', '2', '3', '4', '5'])('v%s accepts floats and out-of-range integers in content', (id) => {
    const version = getRoomVersion(id);
    expect(() => validatePdu(withField(version, 'content.score', 1.5), version)).not.toThrow();
    expect(() => validatePdu(withField(version, 'content.big', 2 ** 60), version)).not.toThrow();
  });

  it.each(['6', '7', '8', '9', '10', '11', '12'])(
    'v%s rejects them as NOT_CANONICAL, naming the path',
    (id) => {
      const version = getRoomVersion(id);
      // The path format belongs to canonical-json.ts; only that it names the field is checked here.
      const float = rejection(withField(version, 'content.score', 1.5), version);
      expect(float.code).toBe('NOT_CANONICAL');
      expect(float.message).toMatch(/content\.score.*1\.5 is not an integer/);
      const big = rejection(withField(version, 'content.big', 2 ** 53), version);
      expect(big.code).toBe('NOT_CANONICAL');
      expect(big.message).toContain('content.big');
      expect(rejection(withField(version, 'unsigned.age', 0.5), version).message).toContain('unsigned.age');
    },
  );

  it('every version rejects what no JSON can carry', () => {
    const v1 = getRoomVersion('1');
    expect(rejection(withField(v1, 'content.nan', Number.NaN), v1).code).toBe('NOT_CANONICAL');
    expect(rejection(withField(v1, 'content.text', 'a\ud800b'), v1).code).toBe('NOT_CANONICAL');
  });
});

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value === 'object' && value !== null) {
    const out: Json = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Json)[key]);
    return out;
  }
  return value;
}
