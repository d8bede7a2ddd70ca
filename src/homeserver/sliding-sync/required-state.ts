/**
 * `required_state` (MSC4186 "RequiredStateRequest"): which state events a room result
 * carries. Configs of several rules combine into their union (MSC4186 "Combining room
 * configs"): an event is sent if any config would send it.
 */
import { type StateKey, type StateMap, splitStateKey } from '../../core/pdu.ts';
import type { RequiredState, RoomConfig, StatePattern } from './types.ts';

const MEMBER = 'm.room.member';

const matches = (p: StatePattern, type: string, stateKey: string) =>
  (p.type === null || p.type === type) && (p.stateKey === null || p.stateKey === stateKey);

/** Whether one config asks for the state entry (lazy members aside). */
function wants(spec: RequiredState, type: string, stateKey: string): boolean {
  const included = spec.include.some((p) => {
    if (!matches(p, type, stateKey)) return false;
    // With lazy members a type wildcard leaves members to the lazy rules; naming the member
    // type (or one member) still asks for them.
    return !(spec.lazyMembers && type === MEMBER && p.type === null);
  });
  return included && !spec.exclude.some((p) => matches(p, type, stateKey));
}

/** The room configs of every rule matching one room, combined. */
export interface CombinedConfig {
  timelineLimit: number;
  specs: RequiredState[];
  lazyMembers: boolean;
}

export function combineConfigs(configs: readonly RoomConfig[]): CombinedConfig {
  return {
    timelineLimit: Math.max(0, ...configs.map((c) => c.timelineLimit)),
    specs: configs.map((c) => c.requiredState),
    lazyMembers: configs.some((c) => c.requiredState.lazyMembers),
  };
}

/**
 * A stable text for a combined config's `required_state` — compared between answers to see
 * whether a room's config changed (MSC4186 "Changing room configs").
 */
export function requiredStateSignature(config: CombinedConfig): string {
  const pattern = (p: StatePattern) => `${p.type ?? '*'}\u0000${p.stateKey ?? '*'}`;
  const specs = config.specs.map(
    (s) =>
      `${s.lazyMembers ? 'L' : ''}+${[...s.include].map(pattern).sort().join('\u0001')}\u0003${[...s.exclude]
        .map(pattern)
        .sort()
        .join('\u0001')}`,
  );
  return [...new Set(specs)].sort().join('\u0002');
}

/**
 * The config a signature was made from (a signature of an older form reads as asking for
 * nothing, so everything asked now is sent) — its `required_state`; the timeline limit is kept
 * beside it —: what the client was sent a room with, to send only what a grown config adds.
 */
export function configFromSignature(signature: string, timelineLimit: number): CombinedConfig {
  const patterns = (text: string): StatePattern[] =>
    text === ''
      ? []
      : text.split('\u0001').map((p) => {
          const [type = '*', key = '*'] = p.split('\u0000');
          return { type: type === '*' ? null : type, stateKey: key === '*' ? null : key };
        });
  const specs: RequiredState[] = (signature === '' ? [] : signature.split('\u0002')).map((spec) => {
    const lazyMembers = spec.startsWith('L');
    const [include = '', exclude = ''] = spec.slice(lazyMembers ? 2 : 1).split('\u0003');
    return { lazyMembers, include: patterns(include), exclude: patterns(exclude) };
  });
  return { timelineLimit, specs, lazyMembers: specs.some((spec) => spec.lazyMembers) };
}

/**
 * The entries of `state` to send: those any config asks for, and with lazy members the member
 * events of `lazyUsers` (the timeline's senders and member targets).
 */
export function selectState(
  state: StateMap,
  config: CombinedConfig,
  lazyUsers: ReadonlySet<string>,
): StateMap {
  const out: StateMap = new Map();
  for (const [key, id] of state) {
    const [type, stateKey] = splitStateKey(key as StateKey);
    if (
      config.specs.some((spec) => wants(spec, type, stateKey)) ||
      (config.lazyMembers && type === MEMBER && lazyUsers.has(stateKey))
    )
      out.set(key, id);
  }
  return out;
}
