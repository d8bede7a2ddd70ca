import { describe, expect, it } from 'vitest';
import tables from './fixtures/events/redaction-tables.json' with { type: 'json' };
import type { Pdu } from './pdu.ts';
import { REDACTION_RULES, redact } from './redaction.ts';
import { getRoomVersion, roomVersions } from './room-versions.ts';

type Json = Record<string, unknown>;

/** The expected redacted content, built from the fixture's key paths (independently of redaction.ts). */
function expectedContent(content: Json, paths: readonly string[]): Json {
  if (paths.includes('*')) return structuredClone(content);
  const out: Json = {};
  for (const path of paths) {
    const [outer, inner] = path.split('.') as [string, string | undefined];
    if (!(outer in content)) continue;
    if (inner === undefined) out[outer] = structuredClone(content[outer]);
    else {
      const nested = content[outer] as Json;
      out[outer] = inner in nested ? { [inner]: structuredClone(nested[inner]) } : {};
    }
  }
  return out;
}

function fullEvent(type: string): Pdu {
  return {
    ...structuredClone(tables.everyTopLevel),
    type,
    content: structuredClone(tables.everyContent),
  } as Pdu;
}

describe('redact: per-version key tables (spec transcription in fixtures/events/redaction-tables.json)', () => {
  it('covers exactly the twelve room versions', () => {
    expect(Object.keys(tables.versionAlgorithm).sort()).toEqual(Object.keys(roomVersions).sort());
  });

  for (const [id, algorithm] of Object.entries(tables.versionAlgorithm)) {
    const version = getRoomVersion(id);
    const expected = tables.algorithms[algorithm as keyof typeof tables.algorithms];

    it(`v${id} uses the ${algorithm} algorithm`, () => {
      expect(version.redaction).toBe(algorithm);
    });

    for (const type of tables.eventTypes) {
      it(`v${id}: ${type} with every key keeps exactly the protected keys`, () => {
        const event = fullEvent(type);
        const before = structuredClone(event);
        const redacted = redact(event, version) as Json;

        const keptTop = expected.topLevel.filter((key) => key === 'content' || key in event);
        expect(Object.keys(redacted).sort()).toEqual([...keptTop].sort());
        for (const key of keptTop) if (key !== 'content') expect(redacted[key]).toEqual(event[key]);

        const paths = (expected.content as Record<string, string[]>)[type] ?? [];
        expect(redacted.content).toEqual(expectedContent(tables.everyContent, paths));

        // Never mutates, never aliases the input.
        expect(event).toEqual(before);
        (redacted.content as Json).membership = 'changed';
        (redacted.signatures as Json)['example.org'] = {};
        expect(event).toEqual(before);
      });
    }
  }
});

describe('redact: edge cases', () => {
  const v1 = getRoomVersion('1');
  const v11 = getRoomVersion('11');

  it('drops the top-level `redacts` of v1–v10 redaction events, keeps `content.redacts` in v11+', () => {
    const v10Redaction = { ...fullEvent('m.room.redaction'), content: { reason: 'spam' } };
    expect(redact(v10Redaction, getRoomVersion('10'))).not.toHaveProperty('redacts');
    const v11Redaction = { ...fullEvent('m.room.redaction'), content: { redacts: '$x', reason: 'spam' } };
    expect(redact(v11Redaction, v11).content).toEqual({ redacts: '$x' });
    expect(redact(v11Redaction, getRoomVersion('12')).content).toEqual({ redacts: '$x' });
  });

  it('v11 member: a third_party_invite without `signed` stays as an empty object; a non-object is dropped', () => {
    const noSigned = {
      ...fullEvent('m.room.member'),
      content: { membership: 'invite', third_party_invite: { a: 1 } },
    };
    expect(redact(noSigned, v11).content).toEqual({ membership: 'invite', third_party_invite: {} });
    const notObject = {
      ...fullEvent('m.room.member'),
      content: { membership: 'invite', third_party_invite: 'x' },
    };
    expect(redact(notObject, v11).content).toEqual({ membership: 'invite' });
    // Before v11 third_party_invite is not protected at all.
    expect(redact(noSigned, getRoomVersion('10')).content).toEqual({ membership: 'invite' });
  });

  it('keeps absent keys absent and gives every result a content object', () => {
    const minimal = { type: 'm.room.message', sender: '@a:b' } as unknown as Pdu;
    expect(redact(minimal, v1)).toEqual({ type: 'm.room.message', sender: '@a:b', content: {} });
    const oddContent = { type: 'm.room.member', content: 'not an object' } as unknown as Pdu;
    expect(redact(oddContent, v1)).toEqual({ type: 'm.room.member', content: {} });
  });

  it('does not read event types or content keys from the prototype chain', () => {
    const proto = { type: '__proto__', content: { membership: 'join' } } as unknown as Pdu;
    expect(redact(proto, v1).content).toEqual({});
    const toStringType = { type: 'toString', content: { toString: 'x' } } as unknown as Pdu;
    expect(redact(toStringType, v11).content).toEqual({});
    const inherited = {
      type: 'm.room.member',
      content: Object.create({ membership: 'join' }),
    } as unknown as Pdu;
    expect(redact(inherited, v1).content).toEqual({});
  });

  it('copies an own `__proto__` key of kept content as a key, as parsed JSON holds it', () => {
    // JSON.parse makes `__proto__` an own property; an assignment would set the prototype instead.
    const event = JSON.parse(
      '{"type":"m.room.power_levels","content":{"users":{"__proto__":100,"@a:a":50},"kick":{"__proto__":{"x":1}}}}',
    ) as Pdu;
    const redacted = redact(event, v11).content as Record<string, Record<string, unknown>>;
    expect(Object.getPrototypeOf(redacted.users)).toBe(Object.prototype);
    expect(Object.keys(redacted.users ?? {})).toEqual(['__proto__', '@a:a']);
    expect(JSON.stringify(redacted)).toBe(
      '{"kick":{"__proto__":{"x":1}},"users":{"__proto__":100,"@a:a":50}}',
    );
  });

  it('is idempotent', () => {
    for (const version of Object.values(roomVersions)) {
      for (const type of tables.eventTypes) {
        const once = redact(fullEvent(type), version);
        expect(redact(once, version)).toEqual(once);
      }
    }
  });

  it('tables are frozen data, one per algorithm', () => {
    expect(Object.keys(REDACTION_RULES).sort()).toEqual(['v1', 'v11', 'v6', 'v8', 'v9']);
    expect(Object.isFrozen(REDACTION_RULES)).toBe(true);
    expect(Object.isFrozen(REDACTION_RULES.v1.topLevel)).toBe(true);
  });
});
