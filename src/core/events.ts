/**
 * Events of every room version: format checks, hashes, IDs, and signing — the entry point
 * for `hearth/core` callers. Signing and checking signatures follow server-server-api.md
 * "Signing Events": "Adding hashes and signatures to outgoing events" and "Validating
 * hashes and signatures on received events".
 *
 * A signature covers the *redacted* event (so it still verifies after a redaction), and the
 * content hash, which the redacted event keeps, covers everything else.
 */

import { utf8Bytes } from './canonical-json.ts';
import {
  defaultEd25519,
  defaultEd25519IfKnown,
  type Ed25519Backend,
  type SigningKey,
  sha256Utf8Base64,
  sha256Utf8Base64Url,
} from './crypto.ts';
import { CoreError, isCoreError } from './errors.ts';
import { identify, toWirePdu } from './event-id.ts';
import {
  checkContentHash,
  computeContentHashBase64,
  eventSignedBytes,
  eventSignedText,
  withSha256,
} from './hashes.ts';
import type { IdentifiedPdu, Pdu } from './pdu.ts';
import { redact } from './redaction.ts';
import type { RoomVersion } from './room-versions.ts';
import {
  addSignature,
  addSignatureNow,
  type SigningKeyNow,
  type VerifyKeys,
  verifySignatures,
} from './signing.ts';

export * from './event-format.ts';
export * from './event-id.ts';
export * from './hashes.ts';

const MEMBER_EVENT_TYPE = 'm.room.member';

/**
 * The server part of a sigil identifier (`@user:server`, `$opaque:server`): everything
 * after the first colon, since localparts never contain one and server names may (a port).
 * Deliberately lenient (unlike identifiers.ts `serverNameOf`): old rooms hold senders that
 * break today's grammar, and their events must still be checkable.
 */
function domainOf(id: string): string {
  const colon = id.indexOf(':');
  if (colon < 1 || colon === id.length - 1) {
    throw new CoreError('BAD_EVENT', `${JSON.stringify(id)} has no server name`);
  }
  return id.slice(colon + 1);
}

function isPromise(value: unknown): value is Promise<unknown> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Signs an outgoing event: sets `hashes.sha256` to the content hash, signs the redacted
 * event as `serverName` with `key`, and returns the full event carrying the new signature
 * next to any it had. v3+ events are returned without `event_id` (their wire form).
 *
 * Not `async`: with a key that signs on this thread (`signNow`, the server's) the event is
 * signed before this returns, and the promise is made already settled — no turn is waited for.
 */
export function signEvent(pdu: Pdu, serverName: string, key: SigningKey, version: RoomVersion): Promise<Pdu> {
  return signThen(pdu, serverName, key, version, itself);
}

const itself = (signed: Pdu): Pdu => signed;

/**
 * `identify(await signEvent(pdu, …))` with the redacted event encoded once: from v3 the event
 * ID is the reference hash, and its input — the redacted event less `signatures`, `unsigned`
 * and `event_id` (server-server-api.md "Calculating the reference hash for an event") — is
 * exactly what the signature covers ("Signing Events"); it is hashed from the same text.
 */
export function signAndIdentify(
  pdu: Pdu,
  serverName: string,
  key: SigningKey,
  version: RoomVersion,
): Promise<IdentifiedPdu> {
  return signThen(pdu, serverName, key, version, (signed, signedText) => {
    switch (version.eventIdFormat) {
      case 'server':
        return identify(signed, version);
      case 'base64':
        return { ...signed, event_id: `$${sha256Utf8Base64(signedText())}` };
      case 'urlsafe':
        return { ...signed, event_id: `$${sha256Utf8Base64Url(signedText())}` };
    }
  });
}

/** `signEvent`, then `finish` of the signed event and its signed text (encoded once). */
function signThen<R>(
  pdu: Pdu,
  serverName: string,
  key: SigningKey,
  version: RoomVersion,
  finish: (signed: Pdu, signedText: () => string) => R,
): Promise<R> {
  try {
    if (!isObject(pdu)) throw new CoreError('BAD_EVENT', 'only a JSON object can be signed as an event');
    // The content hash leaves out what the wire form drops (a v3+ `event_id`), so it is
    // taken from `pdu` itself; the signed text from the copy, once.
    const signed = hashedWire(pdu, version, computeContentHashBase64(pdu, version));
    let text: string | undefined;
    const signedText = () => (text ??= eventSignedText(signed, version));
    if (hasSignNow(key)) {
      signed.signatures = addSignatureNow(signed.signatures, serverName, key, signedText);
      return Promise.resolve(finish(signed, signedText));
    }
    return addSignature(signed.signatures, serverName, key, () => utf8Bytes(signedText())).then(
      (signatures) => {
        signed.signatures = signatures;
        return finish(signed, signedText);
      },
    );
  } catch (err) {
    return Promise.reject(err);
  }
}

function hasSignNow(key: SigningKey): key is SigningKeyNow {
  return key.signNow !== undefined;
}

/**
 * The wire form of `pdu` (v3+ without `event_id`) with `hashes.sha256` set to `sha`: one
 * copy, the caller's to set `signatures` on, since nobody else holds it.
 */
function hashedWire(pdu: Pdu, version: RoomVersion, sha: string): Pdu {
  const hashes = withSha256(pdu.hashes, sha);
  // A spread copies an own `__proto__` as a property, never as the prototype; `hashes`
  // keeps its place, or comes last when the event had none.
  if (version.eventIdFormat === 'server' || !Object.hasOwn(pdu, 'event_id')) return { ...pdu, hashes };
  const { event_id: _dropped, ...wire } = pdu;
  return { ...wire, hashes } as Pdu;
}

/** Signs the redacted form of a wire event that has its content hash; returns the event with the signature added. */
async function signWire(wire: Pdu, serverName: string, key: SigningKey, version: RoomVersion): Promise<Pdu> {
  const signatures = await addSignature(wire.signatures, serverName, key, () =>
    eventSignedBytes(wire, version),
  );
  return { ...wire, signatures };
}

/**
 * Adds `serverName`'s signature to an event that already has its content hash, leaving
 * the hash and other signatures untouched — e.g. the resident server's signature on a
 * restricted join (`join_authorised_via_users_server`), which must not disturb the
 * joining server's signature.
 */
export async function cosignEvent(
  pdu: Pdu,
  serverName: string,
  key: SigningKey,
  version: RoomVersion,
): Promise<Pdu> {
  if (!isObject(pdu)) throw new CoreError('BAD_EVENT', 'only a JSON object can be signed as an event');
  if (typeof (pdu.hashes as { sha256?: unknown } | undefined)?.sha256 !== 'string') {
    throw new CoreError('BAD_EVENT', 'event has no "hashes.sha256" to sign over; use signEvent');
  }
  return signWire(toWirePdu(pdu, version), serverName, key, version);
}

/** Whether a member event is an invite made from a third-party invite (server-server-api.md "Validating hashes..."). */
function isThirdPartyInvite(pdu: Pdu): boolean {
  return (
    pdu.type === MEMBER_EVENT_TYPE &&
    isObject(pdu.content) &&
    pdu.content.membership === 'invite' &&
    pdu.content.third_party_invite !== undefined
  );
}

/**
 * The servers whose signatures an event must carry: the sender's server (except on an
 * invite made from a third-party invite, which another server may send), for v1/v2 also
 * the server named in the `event_id`, and for restricted joins (v8+) the server of
 * `content.join_authorised_via_users_server`. Callers fetch these servers' keys first.
 */
export function requiredSigners(pdu: Pdu, version: RoomVersion): string[] {
  if (typeof pdu.sender !== 'string') throw new CoreError('BAD_EVENT', 'event has no string "sender"');
  const servers = new Set<string>();
  if (!isThirdPartyInvite(pdu)) servers.add(domainOf(pdu.sender));
  if (version.eventIdFormat === 'server') {
    if (typeof pdu.event_id !== 'string') {
      throw new CoreError('BAD_EVENT', `room version ${version.id} events must carry a string "event_id"`);
    }
    servers.add(domainOf(pdu.event_id));
  }
  const content = isObject(pdu.content) ? pdu.content : {};
  const authoriser = content.join_authorised_via_users_server;
  if (
    version.restrictedJoinRule &&
    pdu.type === MEMBER_EVENT_TYPE &&
    content.membership === 'join' &&
    typeof authoriser === 'string'
  ) {
    servers.add(domainOf(authoriser));
  }
  return [...servers];
}

/**
 * Looks up a server's verification keys. `originServerTs` lets the caller leave out keys
 * that had expired by the time the event was sent (rooms/fragments/v5-signing-requirements.md);
 * unknown keys are simply absent.
 */
export type KeysFor = (
  serverName: string,
  originServerTs: number,
) => VerifyKeys | undefined | Promise<VerifyKeys | undefined>;

export interface VerifyEventOptions {
  backend?: Ed25519Backend;
  /** The event's signed bytes (`eventSignedBytes`), when the caller has encoded them already. */
  signedBytes?: Uint8Array;
}

export interface VerifiedEvent<T extends Pdu> {
  /** True when the content hash did not match: only the redacted form may be kept. */
  redacted: boolean;
  /** What to keep: the event itself, or its redaction when `redacted`. */
  pdu: T;
  /**
   * The bytes the signatures cover (`eventSignedBytes`), which are also what the reference
   * hash covers: `identifyFromSignedBytes` names the event from them without encoding it again.
   */
  signedBytes: Uint8Array;
}

/**
 * Checks that `serverName` signed the redacted form of the event with one of `keys`.
 * Throws `BAD_SIGNATURE` naming the server and key otherwise. Auth rules use this for
 * `join_authorised_via_users_server` on any membership.
 */
export async function verifyEventSignature(
  pdu: Pdu,
  version: RoomVersion,
  serverName: string,
  keys: VerifyKeys,
  opts: VerifyEventOptions = {},
): Promise<void> {
  const backend = opts.backend ?? defaultEd25519IfKnown() ?? (await defaultEd25519());
  await verifySigner(pdu, signedBytesOf(pdu, version), serverName, keys, backend).catch(signatureCheckFailed);
}

/** The event's signed bytes, encoded on first use and then reused for every signer. */
function signedBytesOf(pdu: Pdu, version: RoomVersion): () => Uint8Array {
  let bytes: Uint8Array | undefined;
  return () => (bytes ??= eventSignedBytes(pdu, version));
}

/**
 * One server's signatures on the event; the verifications are under way when this
 * returns (see `verifySignatures`), whose errors `signatureCheckFailed` reports as an event
 * check's. Signatures are never redacted, so the event's own are the redacted event's.
 */
function verifySigner(
  pdu: Pdu,
  signed: () => Uint8Array,
  serverName: string,
  keys: VerifyKeys,
  backend: Ed25519Backend,
): Promise<void> {
  const signatures = Object.hasOwn(pdu, 'signatures') ? pdu.signatures : undefined;
  return verifySignatures(signatures, serverName, keys, signed, backend);
}

/** A failed signature check as the error an event check reports. */
function signatureCheckFailed(err: unknown): never {
  throw isCoreError(err)
    ? new CoreError('BAD_SIGNATURE', `event signature check failed: ${err.message}`)
    : err;
}

/**
 * Checks a received event's signatures, then its content hash (server-server-api.md
 * "Validating hashes and signatures on received events"):
 * 1. every server of `requiredSigners` must have signed the redacted event with a key
 *    `keysFor` knows, and every such signature must verify — else `BAD_SIGNATURE`;
 * 2. an invite from a third-party invite, which the sender's server need not sign, must
 *    carry at least one verifying signature from a server with known keys;
 * 3. if the content hash does not match, the event is treated as redacted: the result
 *    says so and carries the redacted copy to store instead.
 * Servers are checked one after another, as listed; the content hash is computed while
 * the first signature is verified (WebCrypto verifies off the main thread). Not `async`:
 * with keys at hand, one step after its verification settles the usual event's check.
 */
export function verifyEvent<T extends Pdu>(
  pdu: T,
  version: RoomVersion,
  keysFor: KeysFor,
  opts: VerifyEventOptions = {},
): Promise<VerifiedEvent<T>> {
  try {
    if (!isObject(pdu)) throw new CoreError('BAD_EVENT', 'an event must be a JSON object');
    const given = opts.signedBytes;
    const event: EventUnderCheck<T> = {
      pdu,
      version,
      keysFor,
      ts: typeof pdu.origin_server_ts === 'number' ? pdu.origin_server_ts : 0,
      required: requiredSigners(pdu, version),
      // Signatures cover the redacted event (server-server-api.md "Signing Events").
      signed: given ? () => given : signedBytesOf(pdu, version),
    };
    const backend = opts.backend ?? defaultEd25519IfKnown();
    return backend
      ? verifyFrom(event, 0, backend)
      : defaultEd25519().then((found) => verifyFrom(event, 0, found));
  } catch (err) {
    return Promise.reject(err);
  }
}

/** What `verifyEvent` works on: the event, its signed bytes once encoded, and the hash check once made. */
interface EventUnderCheck<T extends Pdu> {
  pdu: T;
  version: RoomVersion;
  keysFor: KeysFor;
  ts: number;
  required: readonly string[];
  signed: () => Uint8Array;
  hashMatches?: boolean;
}

/** The required servers from `required[at]` on, one after another; then the third-party rule and the result. */
function verifyFrom<T extends Pdu>(
  event: EventUnderCheck<T>,
  at: number,
  backend: Ed25519Backend,
): Promise<VerifiedEvent<T>> {
  const { pdu, required } = event;
  const server = required[at];
  if (server === undefined) {
    // No server must sign only an invite made from a third-party invite.
    return verifyAnySigner(pdu, event.signed, event.keysFor, event.ts, backend).then(() => outcome(event));
  }
  const found = event.keysFor(server, event.ts);
  const then = (keys: VerifyKeys | undefined) => {
    if (!keys)
      throw new CoreError(
        'BAD_SIGNATURE',
        `no verification keys known for ${server}, which must sign this event`,
      );
    const verified = verifySigner(pdu, event.signed, server, keys, backend);
    event.hashMatches ??= checkContentHash(pdu, event.version);
    const last = at + 1 === required.length && !isThirdPartyInvite(pdu);
    return verified.then(
      () => (last ? outcome(event) : verifyFrom(event, at + 1, backend)),
      signatureCheckFailed,
    );
  };
  return isPromise(found) ? found.then(then) : then(found);
}

/** The result of a check whose signatures verified. */
function outcome<T extends Pdu>(event: EventUnderCheck<T>): VerifiedEvent<T> {
  const { pdu, version, signed } = event;
  if (event.hashMatches ?? checkContentHash(pdu, version))
    return { redacted: false, pdu, signedBytes: signed() };
  return { redacted: true, pdu: redact(pdu, version) as T, signedBytes: signed() };
}

function knowsAKey(entry: unknown, keys: VerifyKeys): boolean {
  if (!isObject(entry)) return false;
  return Object.keys(entry).some((keyId) =>
    keys instanceof Map ? keys.has(keyId) : Object.hasOwn(keys as Record<string, Uint8Array>, keyId),
  );
}

async function verifyAnySigner(
  pdu: Pdu,
  signed: () => Uint8Array,
  keysFor: KeysFor,
  ts: number,
  backend: Ed25519Backend,
): Promise<void> {
  const signatures = isObject(pdu.signatures) ? pdu.signatures : {};
  let verified = 0;
  for (const [server, entry] of Object.entries(signatures)) {
    const keys = await keysFor(server, ts);
    // Signatures made with keys we do not know are skipped (server-server-api.md); one
    // made with a known key must verify.
    if (!keys || !knowsAKey(entry, keys)) continue;
    await verifySigner(pdu, signed, server, keys, backend).catch(signatureCheckFailed);
    verified++;
  }
  if (verified === 0) {
    throw new CoreError(
      'BAD_SIGNATURE',
      'third-party invite carries no verifiable signature from any known server',
    );
  }
}
