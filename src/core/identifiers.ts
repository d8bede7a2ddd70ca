/**
 * Matrix identifiers — appendices.md "Identifier Grammar": server names, user IDs
 * (current and historical grammar), room IDs (with a server part, and the v12 form that
 * is the create event's ID, rooms/v12.md), event IDs (v1/v2 `$opaque:server`, v3+ hashes,
 * rooms/v3.md and rooms/fragments/v4-event-ids.md), room aliases, device IDs, key IDs,
 * the Common Namespaced Identifier Grammar and the Opaque Identifier Grammar.
 *
 * Every `parse…` function takes `unknown` (so raw JSON fields can be passed straight in)
 * and throws `CoreError('INVALID_ID')` naming the rule that failed; every `isValid…`
 * function is the same check answering true or false (not a type guard, so a failed
 * check never narrows a `string` to `never`).
 */
import { CoreError } from './errors.ts';

/** User IDs, room IDs, room aliases and event IDs "MUST NOT exceed 255 bytes" (UTF-8), sigil and domain included. */
export const MAX_ID_BYTES = 255;

/** dns-name = 1*255dns-char (appendices.md "Server Name"). */
const MAX_DNS_NAME_LENGTH = 255;

/** A sha256 reference hash is 32 bytes: 43 characters of unpadded base64. */
const HASH_ID_CHARS = 43;

// ---------------------------------------------------------------------------------------
// Shared helpers

function fail(what: string, input: unknown, why: string): never {
  throw new CoreError('INVALID_ID', `invalid ${what} ${quote(input)}: ${why}`);
}

/** The input as it appears in an error message: JSON-quoted, cut short so a huge input cannot flood logs. */
function quote(input: unknown): string {
  if (typeof input !== 'string') return `(${input === null ? 'null' : typeof input})`;
  const shown = input.length > 80 ? `${input.slice(0, 77)}...` : input;
  return JSON.stringify(shown);
}

/** `"F" (U+0046)`, or just `U+0000` for characters that do not print. */
function describeChar(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || (cp >= 0xd800 && cp <= 0xdfff)) return hex;
  return `${JSON.stringify(ch)} (${hex})`;
}

/** Length of the UTF-8 encoding (a lone surrogate counts as the 3 bytes of its replacement). */
export function utf8ByteLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** The first character (code point; a lone surrogate on its own) for which `ok` is false. */
function firstBadChar(text: string, ok: (ch: string) => boolean): string | undefined {
  for (const ch of text) if (!ok(ch)) return ch;
  return undefined;
}

/** "valid non-surrogate Unicode code points … except `:` and NUL" (room ID and alias localparts, historical user IDs). */
function opaqueLocalpartProblem(localpart: string): string | undefined {
  const bad = firstBadChar(localpart, (ch) => {
    const c = ch.charCodeAt(0);
    return c !== 0 && ch !== ':' && !(ch.length === 1 && c >= 0xd800 && c <= 0xdfff);
  });
  if (bad === undefined) return undefined;
  if (bad === '\0') return 'contains NUL (U+0000)';
  return `contains a lone surrogate (${describeChar(bad)}), which is not a Unicode code point`;
}

function checkLength(what: string, id: string): void {
  const bytes = utf8ByteLength(id);
  if (bytes > MAX_ID_BYTES) fail(what, id, `${bytes} bytes long; the limit is ${MAX_ID_BYTES} bytes (UTF-8)`);
}

function requireString(what: string, input: unknown): string {
  if (typeof input !== 'string') fail(what, input, 'not a string');
  if (input === '') fail(what, input, 'empty');
  return input;
}

function requireSigil(what: string, id: string, sigil: string): void {
  if (id[0] !== sigil) fail(what, id, `must start with "${sigil}"`);
}

/** Splits `&localpart:domain` at the first colon (no localpart may contain one) and checks the domain. */
function splitDelimited(what: string, id: string): { localpart: string; serverName: string } {
  const colon = id.indexOf(':');
  if (colon === -1) fail(what, id, 'no ":" separating the server name');
  const serverName = id.slice(colon + 1);
  const server = readServerName(serverName);
  if (typeof server === 'string') fail(what, id, `server name ${quote(serverName)}: ${server}`);
  return { localpart: id.slice(1, colon), serverName };
}

function isValidBy<T>(parse: () => T): boolean {
  try {
    parse();
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------
// Server names

export type HostKind = 'dns' | 'ipv4' | 'ipv6';

export interface ServerName {
  /** As written: a DNS name, a dotted quad, or an IPv6 literal *with* its brackets (ready for a URL). */
  host: string;
  /** Present only when the server name names one (1–65535). */
  port?: number;
  kind: HostKind;
}

const DNS_CHAR = /^[A-Za-z0-9.-]$/;
const DOTTED_QUAD = /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
const IPV6_CHAR = /^[0-9A-Fa-f:.]$/;

/**
 * IPv4 literals are "four decimal numbers in the range 0 to 255" of 1–3 digits each. Inside
 * an IPv6 literal the parts are RFC 3986 dec-octets, with no leading zeros (as Rust's and
 * Node's IPv6 parsers, and so ruma, require).
 */
function ipv4Problem(text: string, inIpv6: boolean): string | undefined {
  for (const part of text.split('.')) {
    if (part.length > 3) return `IPv4 part "${part}" has more than 3 digits`;
    if (Number(part) > 255) return `IPv4 part "${part}" is over 255`;
    if (inIpv6 && part.length > 1 && part[0] === '0') return `IPv4 part "${part}" has a leading zero`;
  }
  return undefined;
}

/** RFC 3513 section 2.2: eight hex groups, one `::` for a run of zero groups, optionally an IPv4 tail. */
function ipv6Problem(text: string): string | undefined {
  if (text.length < 2 || text.length > 45) return 'an IPv6 literal is 2 to 45 characters';
  const bad = firstBadChar(text, (ch) => IPV6_CHAR.test(ch));
  if (bad !== undefined) return `${describeChar(bad)} is not allowed in an IPv6 literal`;
  const gap = text.indexOf('::');
  if (gap !== -1 && text.indexOf('::', gap + 1) !== -1) return 'more than one "::" in the IPv6 literal';
  const head = gap === -1 ? text : text.slice(0, gap);
  const tail = gap === -1 ? '' : text.slice(gap + 2);
  const groups = [...(head ? head.split(':') : []), ...(tail ? tail.split(':') : [])];
  let count = 0;
  for (let i = 0; i < groups.length; i++) {
    const group = groups[i] as string;
    if (group.includes('.')) {
      // An embedded IPv4 address may only be the last 32 bits.
      if (i !== groups.length - 1 || (gap !== -1 && !tail))
        return 'an IPv4 part may only end an IPv6 literal';
      if (!DOTTED_QUAD.test(group)) return `"${group}" is not a dotted-quad IPv4 address`;
      const problem = ipv4Problem(group, true);
      if (problem) return problem;
      count += 2;
    } else {
      if (!HEX_GROUP.test(group)) {
        return group ? `IPv6 group "${group}" is not 1 to 4 hex digits` : 'empty group in the IPv6 literal';
      }
      count += 1;
    }
  }
  if (gap === -1 && count !== 8) return `an IPv6 literal without "::" has 8 groups, not ${count}`;
  if (gap !== -1 && count > 7) return `too many groups (${count}) around "::" in the IPv6 literal`;
  return undefined;
}

/** A server name, or the reason it is not one. */
function readServerName(name: string): ServerName | string {
  if (name === '') return 'empty';
  let host: string;
  let kind: HostKind;
  if (name[0] === '[') {
    const close = name.indexOf(']');
    if (close === -1) return 'IPv6 literal without a closing "]"';
    const problem = ipv6Problem(name.slice(1, close));
    if (problem) return problem;
    host = name.slice(0, close + 1);
    kind = 'ipv6';
  } else {
    const colon = name.indexOf(':');
    host = colon === -1 ? name : name.slice(0, colon);
    if (host === '') return 'empty hostname';
    const bad = firstBadChar(host, (ch) => DNS_CHAR.test(ch));
    if (bad !== undefined) {
      return `${describeChar(bad)} is not allowed in a hostname (letters, digits, "-", ".", or an IPv6 literal in brackets)`;
    }
    if (DOTTED_QUAD.test(host)) {
      // RFC 1123 2.1: a host name never has the form #.#.#.# (its top label is alphabetic), so this is an IPv4 literal.
      const problem = ipv4Problem(host, false);
      if (problem) return problem;
      kind = 'ipv4';
    } else {
      if (host.length > MAX_DNS_NAME_LENGTH) return `DNS name longer than ${MAX_DNS_NAME_LENGTH} characters`;
      kind = 'dns';
    }
  }
  if (host.length === name.length) return { host, kind };
  if (name[host.length] !== ':')
    return `unexpected ${describeChar(name[host.length] as string)} after the hostname`;
  const port = name.slice(host.length + 1);
  if (port === '') return 'empty port after ":"';
  if (!/^[0-9]{1,5}$/.test(port)) return `port "${port}" is not 1 to 5 digits`;
  const value = Number(port);
  if (value < 1 || value > 65535) return `port ${value} is outside 1-65535`;
  return { host, port: value, kind };
}

/**
 * `hostname [":" port]` where hostname is a DNS name, a dotted-quad IPv4 literal or a
 * bracketed IPv6 literal. Server names are case-sensitive and compared as strings, so
 * the name is returned as given, never normalised. DNS label rules (no empty labels, no
 * leading hyphen) are a SHOULD in the spec and are not enforced, as Synapse and ruma do
 * not enforce them either; the 230-character recommendation is likewise not enforced.
 */
export function parseServerName(name: unknown): ServerName {
  if (typeof name !== 'string') fail('server name', name, 'not a string');
  const server = readServerName(name);
  if (typeof server === 'string') fail('server name', name, server);
  return server;
}

export function isValidServerName(name: unknown): boolean {
  return typeof name === 'string' && typeof readServerName(name) !== 'string';
}

// ---------------------------------------------------------------------------------------
// User IDs

export interface UserIdOptions {
  /**
   * Accept the historical grammar (appendices.md "Historical User IDs"): any localpart
   * of non-surrogate code points except `:` and NUL, the empty one included. Servers
   * MUST accept these in events of existing rooms; new IDs use the strict grammar.
   */
  historical?: boolean;
}

export interface UserId {
  localpart: string;
  serverName: string;
}

const USER_ID_CHAR = /^[a-z0-9._=\-/+]$/;

function localpartProblem(localpart: string, historical: boolean): string | undefined {
  if (historical) return opaqueLocalpartProblem(localpart);
  if (localpart === '') return 'empty localpart';
  const bad = firstBadChar(localpart, (ch) => USER_ID_CHAR.test(ch));
  if (bad === undefined) return undefined;
  const hint = bad >= 'A' && bad <= 'Z' ? ' (user IDs are lower-case)' : '';
  return `localpart contains ${describeChar(bad)}; allowed are a-z, 0-9 and . _ = - / +${hint}`;
}

/** `@localpart:server_name`, at most 255 bytes. Strict grammar unless `historical` is set. */
export function parseUserId(id: unknown, options: UserIdOptions = {}): UserId {
  const what = 'user ID';
  const text = requireString(what, id);
  requireSigil(what, text, '@');
  checkLength(what, text);
  const parts = splitDelimited(what, text);
  const problem = localpartProblem(parts.localpart, options.historical ?? false);
  if (problem) fail(what, text, problem);
  return parts;
}

export function isValidUserId(id: unknown, options: UserIdOptions = {}): boolean {
  return isValidBy(() => parseUserId(id, options));
}

/** Whether `localpart` may stand between `@` and `:` (strict grammar unless `historical`). */
export function isValidLocalpart(localpart: unknown, options: UserIdOptions = {}): boolean {
  return (
    typeof localpart === 'string' && localpartProblem(localpart, options.historical ?? false) === undefined
  );
}

/**
 * How a user ID that parses under the historical grammar stands today:
 * `current` — the strict grammar; `historical` — the older printable-ASCII set
 * (U+0021–U+007E, non-empty), still compliant; `non-compliant` — anything else the
 * historical grammar allows. Servers accept all three in events, but SHOULD NOT pass
 * non-compliant user IDs to clients outside an event (appendices.md "Historical User IDs").
 */
export function userIdCompliance(id: unknown): 'current' | 'historical' | 'non-compliant' {
  const { localpart } = parseUserId(id, { historical: true });
  if (localpartProblem(localpart, false) === undefined) return 'current';
  if (localpart !== '' && /^[\x21-\x7e]+$/.test(localpart)) return 'historical';
  return 'non-compliant';
}

// ---------------------------------------------------------------------------------------
// Hash-derived identifiers (v3+ event IDs, v12 room IDs)

const STD_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Why `hash` is not the unpadded base64 of a 32-byte sha256 in `alphabet`. The last of
 * 43 characters carries 4 bits of hash and 2 zero bits; any other last character cannot
 * come from encoding a hash, so no computed ID could ever equal it.
 */
function hashProblem(hash: string, alphabet: string, alphabetName: string): string | undefined {
  if (hash.length !== HASH_ID_CHARS) {
    return `a hash is ${HASH_ID_CHARS} characters of ${alphabetName} base64, not ${hash.length}`;
  }
  const bad = firstBadChar(hash, (ch) => alphabet.includes(ch));
  if (bad !== undefined) return `${describeChar(bad)} is not a ${alphabetName} base64 character`;
  if (alphabet.indexOf(hash[HASH_ID_CHARS - 1] as string) % 4 !== 0) {
    return 'the last character has non-zero padding bits, so it does not encode a 32-byte hash';
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Room IDs

/** `server`: `!opaque:server` (room versions 1–11); `hash`: `!` + the create event's hash (v12). */
export type RoomIdFormat = 'server' | 'hash';

export interface RoomIdOptions {
  /** Require this form; by default either is accepted (a colon selects `server`). */
  format?: RoomIdFormat;
}

export interface RoomId {
  /** The localpart, or for the `hash` form the 43-character URL-safe base64 hash. */
  opaque: string;
  /** Absent for the `hash` form, which names no server. */
  serverName?: string;
}

export function parseRoomId(id: unknown, options: RoomIdOptions = {}): RoomId {
  const what = 'room ID';
  const text = requireString(what, id);
  requireSigil(what, text, '!');
  checkLength(what, text);
  const format = options.format ?? (text.includes(':') ? 'server' : 'hash');
  if (format === 'hash') {
    if (text.includes(':'))
      fail(what, text, 'this room version uses "!" + hash room IDs, which name no server');
    const problem = hashProblem(text.slice(1), URL_ALPHABET, 'URL-safe');
    if (problem)
      fail(what, text, options.format ? problem : `neither "!opaque:server" nor "!" + hash: ${problem}`);
    return { opaque: text.slice(1) };
  }
  const parts = splitDelimited(what, text);
  const problem = opaqueLocalpartProblem(parts.localpart);
  if (problem) fail(what, text, `localpart ${problem}`);
  return { opaque: parts.localpart, serverName: parts.serverName };
}

export function isValidRoomId(id: unknown, options: RoomIdOptions = {}): boolean {
  return isValidBy(() => parseRoomId(id, options));
}

// ---------------------------------------------------------------------------------------
// Event IDs

/** The same names as `RoomVersion.eventIdFormat`: pass `{ format: version.eventIdFormat }`. */
export type EventIdFormat = 'server' | 'base64' | 'urlsafe';

export interface EventIdOptions {
  /** Require the form of one room version; by default any form is accepted. */
  format?: EventIdFormat;
}

export interface EventId {
  /** The opaque part (v1/v2) or the base64 reference hash (v3+). */
  opaque: string;
  /** Only v1/v2 event IDs name a server. */
  serverName?: string;
}

export function parseEventId(id: unknown, options: EventIdOptions = {}): EventId {
  const what = 'event ID';
  const text = requireString(what, id);
  requireSigil(what, text, '$');
  checkLength(what, text);
  const hash = text.slice(1);
  let format = options.format;
  if (format === undefined) {
    if (text.includes(':')) format = 'server';
    else if (/[+/]/.test(hash)) format = 'base64';
    else format = 'urlsafe'; // also covers hashes that use neither alphabet's last two characters
  }
  if (format === 'server') {
    const parts = splitDelimited(what, text);
    const problem = opaqueLocalpartProblem(parts.localpart);
    if (problem) fail(what, text, `opaque part ${problem}`);
    return { opaque: parts.localpart, serverName: parts.serverName };
  }
  if (text.includes(':'))
    fail(what, text, 'this room version uses "$" + hash event IDs, which name no server');
  const problem =
    format === 'base64'
      ? hashProblem(hash, STD_ALPHABET, 'standard')
      : hashProblem(hash, URL_ALPHABET, 'URL-safe');
  if (problem) {
    fail(what, text, options.format ? problem : `neither "$opaque:server" nor "$" + hash: ${problem}`);
  }
  return { opaque: hash };
}

export function isValidEventId(id: unknown, options: EventIdOptions = {}): boolean {
  return isValidBy(() => parseEventId(id, options));
}

/** A v12 room's ID: its `m.room.create` event's ID with `!` for `$` (rooms/v12.md). */
export function roomIdFromCreateEventId(eventId: unknown): string {
  const { opaque } = parseEventId(eventId, { format: 'urlsafe' });
  return `!${opaque}`;
}

/** The `m.room.create` event ID of a v12 room, read from its room ID. */
export function createEventIdFromRoomId(roomId: unknown): string {
  const { opaque } = parseRoomId(roomId, { format: 'hash' });
  return `$${opaque}`;
}

// ---------------------------------------------------------------------------------------
// Room aliases

export interface RoomAlias {
  localpart: string;
  serverName: string;
}

/** `#localpart:server_name`, at most 255 bytes; the localpart is any code points but `:` and NUL. */
export function parseRoomAlias(alias: unknown): RoomAlias {
  const what = 'room alias';
  const text = requireString(what, alias);
  requireSigil(what, text, '#');
  checkLength(what, text);
  const parts = splitDelimited(what, text);
  const problem = opaqueLocalpartProblem(parts.localpart);
  if (problem) fail(what, text, `localpart ${problem}`);
  return parts;
}

export function isValidRoomAlias(alias: unknown): boolean {
  return isValidBy(() => parseRoomAlias(alias));
}

/** The server named by a user ID, room ID, event ID or room alias; undefined for hash IDs, which name none. */
export function serverNameOf(id: unknown): string | undefined {
  const text = requireString('identifier', id);
  switch (text[0]) {
    case '@':
      return parseUserId(text, { historical: true }).serverName;
    case '!':
      return parseRoomId(text).serverName;
    case '$':
      return parseEventId(text).serverName;
    case '#':
      return parseRoomAlias(text).serverName;
    default:
      return fail('identifier', text, 'must start with one of the sigils @ ! $ #');
  }
}

// ---------------------------------------------------------------------------------------
// Device IDs and key IDs

/**
 * The spec leaves device IDs opaque (client-server-api "Device ID allocation" only asks
 * clients to use RFC 3986 unreserved characters). Hearth accepts 1–255 bytes of
 * well-formed Unicode without control characters: they land in URLs, key IDs and logs.
 */
export function parseDeviceId(id: unknown): string {
  const what = 'device ID';
  const text = requireString(what, id);
  const bytes = utf8ByteLength(text);
  if (bytes > MAX_ID_BYTES)
    fail(what, text, `${bytes} bytes long; the limit is ${MAX_ID_BYTES} bytes (UTF-8)`);
  const bad = firstBadChar(text, (ch) => {
    const c = ch.charCodeAt(0);
    return c >= 0x20 && c !== 0x7f && !(ch.length === 1 && c >= 0xd800 && c <= 0xdfff);
  });
  if (bad !== undefined) fail(what, text, `contains ${describeChar(bad)}`);
  return text;
}

export function isValidDeviceId(id: unknown): boolean {
  return isValidBy(() => parseDeviceId(id));
}

export interface KeyIdOptions {
  /**
   * A homeserver signing key ID: its version is `[a-zA-Z0-9_]+` (server-server-api
   * "Publishing Keys"). Otherwise the version is a device ID or an unpadded base64
   * public key (device, one-time and cross-signing keys) and is checked as a device ID.
   */
  server?: boolean;
}

export interface KeyId {
  /** `ed25519`, `curve25519`, `signed_curve25519`… */
  algorithm: string;
  version: string;
}

const KEY_ALGORITHM = /^[A-Za-z0-9_.-]+$/;
const SERVER_KEY_VERSION = /^[A-Za-z0-9_]+$/;

/** `algorithm:version`, split at the first colon. */
export function parseKeyId(id: unknown, options: KeyIdOptions = {}): KeyId {
  const what = 'key ID';
  const text = requireString(what, id);
  const colon = text.indexOf(':');
  if (colon === -1) fail(what, text, 'no ":" between algorithm and version');
  const algorithm = text.slice(0, colon);
  const version = text.slice(colon + 1);
  if (!KEY_ALGORITHM.test(algorithm)) {
    fail(what, text, algorithm ? 'the algorithm is not [A-Za-z0-9_.-]+' : 'empty algorithm');
  }
  if (version === '') fail(what, text, 'empty version');
  if (options.server) {
    if (!SERVER_KEY_VERSION.test(version)) fail(what, text, 'a server key version is [a-zA-Z0-9_]+');
  } else if (!isValidDeviceId(version)) {
    fail(what, text, 'the version is not 1-255 bytes of printable Unicode');
  }
  return { algorithm, version };
}

export function isValidKeyId(id: unknown, options: KeyIdOptions = {}): boolean {
  return isValidBy(() => parseKeyId(id, options));
}

// ---------------------------------------------------------------------------------------
// Namespaced and opaque identifiers

const NAMESPACED_ID = /^[a-z][a-z0-9._-]*$/;

/**
 * Common Namespaced Identifier Grammar: 1–255 characters, `[a-z]` then `[a-z0-9._-]`.
 * `m.`-prefixed identifiers are valid here; whether one is known is the caller's concern.
 */
export function isValidNamespacedId(id: unknown): boolean {
  return typeof id === 'string' && id.length <= 255 && NAMESPACED_ID.test(id);
}

/** Whether a namespaced identifier is reserved for the Matrix specification. */
export function isReservedNamespacedId(id: string): boolean {
  return id.startsWith('m.');
}

const OPAQUE_ID = /^[0-9A-Za-z._~-]+$/;

/** Opaque Identifier Grammar (RFC 3986 unreserved characters), 1–`maxLength` characters (255 unless the spec says). */
export function isValidOpaqueId(id: unknown, maxLength = 255): boolean {
  return typeof id === 'string' && id.length <= maxLength && OPAQUE_ID.test(id);
}
