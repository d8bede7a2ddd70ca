import { describe, expect, it } from 'vitest';
import {
  CREATOR_POWER_LEVEL,
  isPrivilegedCreator,
  legacyRoomCreator,
  namedPowerLevel,
  namedPowerLevelFrom,
  parsePowerLevelsContent,
  parsePowerLevelValue,
  requiredPowerLevel,
  roomCreators,
  userPowerLevel,
  userPowerLevelFrom,
} from './power-levels.ts';
import { type RoomVersion, roomVersions } from './room-versions.ts';

const v = (id: string): RoomVersion => roomVersions[id] as RoomVersion;
const all = Object.values(roomVersions);
const pl = (content: unknown) => ({ content });
const create = (sender: string, content: Record<string, unknown> = {}) => ({ sender, content });

describe('parsePowerLevelValue', () => {
  it.each([
    // [value, versions where it reads as, result]
    [50, '1-12', 50],
    [-7, '1-12', -7],
    ['50', '1-9', 50],
    [' +0050 ', '1-9', 50],
    ['-10', '1-9', -10],
    ['\t42\n', '1-9', 42],
    [50.57, '1-5', 50],
    [-50.57, '1-5', -50],
    [-0.5, '1-5', 0],
    [1e300, '1-5', 1e300],
  ] as const)('%j is %j in v%s', (value, range, expected) => {
    const [from, to] = range.split('-').map(Number) as [number, number];
    for (const version of all) {
      const n = Number(version.id);
      const got = parsePowerLevelValue(value, version);
      if (n >= from && n <= to) expect(got, `v${version.id}`).toBe(expected);
      else expect(got, `v${version.id}`).toBeUndefined();
    }
  });

  it.each([
    ['5x'],
    ['50.5'],
    ['+-5'],
    ['1_000'],
    [''],
    ['0x10'],
    [true],
    [null],
    [{}],
    [[50]],
    [Number.NaN],
    [Number.POSITIVE_INFINITY],
    ['99999999999999999999'],
  ])('%j is malformed in every version', (value) => {
    for (const version of all) expect(parsePowerLevelValue(value, version), `v${version.id}`).toBeUndefined();
  });

  it('keeps v6+ integers within the canonical range', () => {
    expect(parsePowerLevelValue(2 ** 53 - 1, v('6'))).toBe(2 ** 53 - 1);
    expect(parsePowerLevelValue(2 ** 53, v('6'))).toBeUndefined();
    expect(parsePowerLevelValue(2 ** 53, v('5'))).toBe(2 ** 53);
  });
});

describe('room creators', () => {
  it('v12 creators are the sender and the string additional_creators', () => {
    const event = create('@a:x', { additional_creators: ['@b:y', 5, '@c:z'] });
    expect([...roomCreators(event, v('12'))]).toEqual(['@a:x', '@b:y', '@c:z']);
    expect(roomCreators(event, v('11')).size).toBe(0);
    expect(isPrivilegedCreator('@b:y', event, v('12'))).toBe(true);
    expect(isPrivilegedCreator('@b:y', event, v('11'))).toBe(false);
  });

  it('the legacy creator is content.creator up to v10 and the sender from v11', () => {
    const event = create('@a:x', { creator: '@b:y' });
    expect(legacyRoomCreator(event, v('10'))).toBe('@b:y');
    expect(legacyRoomCreator(event, v('11'))).toBe('@a:x');
    expect(legacyRoomCreator(create('@a:x', { creator: 5 }), v('1'))).toBeUndefined();
    expect(legacyRoomCreator(undefined, v('1'))).toBeUndefined();
  });
});

describe('userPowerLevel', () => {
  const levels = pl({ users: { '@a:x': 100, '@b:y': '60', '@bad:y': 'x' }, users_default: 5 });

  it('reads users, then users_default', () => {
    expect(userPowerLevel('@a:x', levels, create('@a:x'), v('9'))).toBe(100);
    expect(userPowerLevel('@b:y', levels, create('@a:x'), v('9'))).toBe(60);
    expect(userPowerLevel('@c:z', levels, create('@a:x'), v('9'))).toBe(5);
    expect(userPowerLevel('@c:z', pl({}), create('@a:x'), v('9'))).toBe(0);
  });

  it('reads a malformed entry leniently as users_default', () => {
    expect(userPowerLevel('@bad:y', levels, create('@a:x'), v('9'))).toBe(5);
    expect(userPowerLevel('@b:y', levels, create('@a:x'), v('10'))).toBe(5); // no strings in v10
    expect(userPowerLevel('@c:z', pl({ users_default: 'x' }), undefined, v('9'))).toBe(0);
    expect(userPowerLevel('@c:z', pl({ users: 'nope', users_default: 3 }), undefined, v('9'))).toBe(3);
    expect(userPowerLevel('@c:z', pl('not an object'), undefined, v('9'))).toBe(0);
  });

  it('without power levels: the creator 100 (v1–v11), creators infinite (v12), others 0', () => {
    expect(userPowerLevel('@a:x', undefined, create('@a:x'), v('11'))).toBe(100);
    expect(userPowerLevel('@b:y', undefined, create('@a:x', { creator: '@b:y' }), v('10'))).toBe(100);
    expect(userPowerLevel('@a:x', undefined, create('@a:x', { creator: '@b:y' }), v('10'))).toBe(0);
    expect(userPowerLevel('@a:x', undefined, create('@a:x'), v('12'))).toBe(CREATOR_POWER_LEVEL);
    expect(userPowerLevel('@c:z', undefined, create('@a:x'), v('12'))).toBe(0);
  });

  it('v12 creators are infinite even where the power levels say otherwise', () => {
    const event = create('@a:x', { additional_creators: ['@b:y'] });
    expect(userPowerLevel('@b:y', pl({ users: { '@b:y': 1 } }), event, v('12'))).toBe(
      Number.POSITIVE_INFINITY,
    );
    expect(userPowerLevel('@b:y', pl({ users: { '@b:y': 1 } }), event, v('11'))).toBe(1);
  });

  it('the strict variant reports malformed values it consults, and only those', () => {
    const problems: string[] = [];
    const record = (problem: string): number => {
      problems.push(problem);
      return -1;
    };
    expect(userPowerLevelFrom('@bad:y', levels, undefined, v('9'), record)).toBe(-1);
    expect(userPowerLevelFrom('@a:x', levels, undefined, v('9'), record)).toBe(100);
    expect(problems).toEqual(['`users.@bad:y` in m.room.power_levels is not a valid power level']);
  });
});

describe('required and named levels', () => {
  it('uses events, then state_default or events_default, with the schema defaults', () => {
    const levels = pl({ events: { 'm.room.name': 70, 'm.custom': 3 }, state_default: 40, events_default: 2 });
    expect(requiredPowerLevel('m.room.name', '', levels, v('9'))).toBe(70);
    expect(requiredPowerLevel('m.custom', undefined, levels, v('9'))).toBe(3);
    expect(requiredPowerLevel('m.room.topic', '', levels, v('9'))).toBe(40);
    expect(requiredPowerLevel('m.room.message', undefined, levels, v('9'))).toBe(2);
    expect(requiredPowerLevel('m.room.topic', '', undefined, v('9'))).toBe(50);
    expect(requiredPowerLevel('m.room.message', undefined, undefined, v('9'))).toBe(0);
    expect(requiredPowerLevel('m.room.topic', '', pl({ events: 'x', state_default: 'y' }), v('9'))).toBe(50);
  });

  it('named levels default to invite 0, kick/ban/redact 50', () => {
    expect(namedPowerLevel('invite', undefined, v('1'))).toBe(0);
    for (const name of ['kick', 'ban', 'redact'] as const)
      expect(namedPowerLevel(name, pl({}), v('1'))).toBe(50);
    expect(namedPowerLevel('ban', pl({ ban: '20' }), v('9'))).toBe(20);
    expect(namedPowerLevel('ban', pl({ ban: '20' }), v('10'))).toBe(50);
    expect(namedPowerLevel('ban', pl({ ban: null }), v('10'))).toBe(50);
    expect(() =>
      namedPowerLevelFrom('ban', pl({ ban: '20' }), v('10'), (p) => {
        throw new Error(p);
      }),
    ).toThrow('`ban` in m.room.power_levels is not a valid power level');
  });
});

describe('parsePowerLevelsContent', () => {
  it('fills defaults and reports nothing for well-formed content', () => {
    const { levels, problems } = parsePowerLevelsContent({ users: { '@a:x': 100 }, kick: 10 }, v('12'));
    expect(problems).toEqual([]);
    expect(levels.kick).toBe(10);
    expect(levels.ban).toBe(50);
    expect(levels.state_default).toBe(50);
    expect(levels.users.get('@a:x')).toBe(100);
  });

  it('reports every malformed value and keeps the rest', () => {
    const { levels, problems } = parsePowerLevelsContent(
      { users: { '@a:x': '100', '@b:y': 7 }, ban: 'x', events: 'nope', notifications: { room: true } },
      v('10'),
    );
    expect(problems).toHaveLength(4);
    expect(levels.users.get('@b:y')).toBe(7);
    expect(levels.users.has('@a:x')).toBe(false);
    expect(levels.ban).toBe(50);
    expect(levels.events.size).toBe(0);
  });

  it('reads strings in v1–v9', () => {
    const { levels, problems } = parsePowerLevelsContent({ users: { '@a:x': '100' }, ban: ' 20 ' }, v('9'));
    expect(problems).toEqual([]);
    expect(levels.users.get('@a:x')).toBe(100);
    expect(levels.ban).toBe(20);
  });

  it('survives content that is not an object', () => {
    expect(parsePowerLevelsContent(null, v('1')).problems).toEqual([
      'm.room.power_levels content is not an object',
    ]);
  });
});
