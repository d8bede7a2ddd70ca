/**
 * End-to-end encryption as Element does it: matrix-js-sdk, unmodified, with its Rust crypto
 * (`initRustCrypto`, @matrix-org/matrix-sdk-crypto-wasm) against any base URL + fetch.
 *
 * Two users share an encrypted room and read each other's messages; Alice's cross-signing is
 * bootstrapped (the first upload without user-interactive auth); a second
 * device of Alice receives room keys and is verified by the first through cross-signing;
 * Alice's keys go to a server-side backup; the server restarts while a message for Bob's
 * device waits in its to-device queue; and a fresh device of Alice restores the backup and
 * reads the history no device shared with it.
 */
import { createClient, type MatrixClient, type MatrixEvent } from 'matrix-js-sdk';
import { expect } from 'vitest';
import { login, PASSWORD, register } from './js-sdk-scenario.ts';

export interface CryptoTarget {
  baseUrl: string;
  fetchFn: typeof fetch;
  /** Stops the homeserver and starts it again on the same data; the base URL stays. */
  restart(): Promise<void>;
}

interface Creds {
  userId: string;
  accessToken: string;
  deviceId: string;
}

const quiet = { debug() {}, info() {}, log() {}, warn() {}, error() {}, trace() {}, getChild: () => quiet };

/** Re-tests `check` every 50 ms until it holds; fails after `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Cuts a client off the network: while closed, its requests wait and answers that arrive are
 * dropped as a network error would drop them (the client retries). Stopping a client instead
 * would end its Rust crypto for good.
 */
class Gate {
  private opened: Promise<void> = Promise.resolve();
  private release: (() => void) | undefined;
  get closed() {
    return this.release !== undefined;
  }
  close() {
    this.opened = new Promise((resolve) => {
      this.release = resolve;
    });
  }
  open() {
    this.release?.();
    this.release = undefined;
  }
  wrap(fetchFn: typeof fetch): typeof fetch {
    return (async (input: RequestInfo | URL, init?: RequestInit) => {
      await this.opened;
      const res = await fetchFn(input, init);
      if (this.closed) {
        await this.opened;
        throw new TypeError('network error: the client was cut off');
      }
      return res;
    }) as typeof fetch;
  }
}

export async function startCryptoClient(
  target: Pick<CryptoTarget, 'baseUrl' | 'fetchFn'>,
  creds: Creds,
  gate = new Gate(),
): Promise<MatrixClient> {
  const client = createClient({
    baseUrl: target.baseUrl,
    fetchFn: gate.wrap(target.fetchFn),
    userId: creds.userId,
    accessToken: creds.accessToken,
    deviceId: creds.deviceId,
    logger: quiet as never,
  });
  await client.initRustCrypto({ useIndexedDB: false });
  await client.startClient({ initialSyncLimit: 30 });
  await eventually(() => client.isInitialSyncComplete(), `${creds.userId}'s first sync`);
  // The device's identity keys are uploaded in the background; signing them needs them stored.
  await eventually(async () => {
    const res = await target.fetchFn(`${target.baseUrl}/_matrix/client/v3/keys/query`, {
      method: 'POST',
      headers: { authorization: `Bearer ${creds.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ device_keys: { [creds.userId]: [creds.deviceId] } }),
    });
    const body = (await res.json()) as { device_keys: Record<string, Record<string, unknown>> };
    return body.device_keys[creds.userId]?.[creds.deviceId] !== undefined;
  }, `${creds.userId}'s device keys uploaded`);
  return client;
}

/** The decrypted event of the room with this body, sent encrypted on the wire. */
function decrypted(client: MatrixClient, roomId: string, body: string): MatrixEvent | undefined {
  return client
    .getRoom(roomId)
    ?.getLiveTimeline()
    .getEvents()
    .find((e) => e.getWireType() === 'm.room.encrypted' && e.getContent().body === body);
}

export async function waitDecrypted(client: MatrixClient, roomId: string, body: string, what: string) {
  await eventually(() => decrypted(client, roomId, body) !== undefined, what);
}

/** The raw answer of the homeserver, read beside the SDK. */
async function api(target: CryptoTarget, token: string, path: string): Promise<Record<string, unknown>> {
  const res = await target.fetchFn(`${target.baseUrl}/_matrix/client/v3${path}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return (await res.json()) as Record<string, unknown>;
}

/**
 * `authUploadDeviceSigningKeys` as a client does it: without auth first, then (on 401) the
 * user's password in the session the server gave. `on401` sees each time auth was asked.
 */
export function passwordUia(userId: string, on401: () => void = () => {}) {
  return async (makeRequest: (auth: Record<string, unknown> | null) => Promise<unknown>) => {
    try {
      await makeRequest(null);
    } catch (err) {
      const e = err as { httpStatus?: number; data?: { session?: string } };
      if (e.httpStatus !== 401) throw err;
      on401();
      await makeRequest({
        type: 'm.login.password',
        identifier: { type: 'm.id.user', user: userId },
        password: PASSWORD,
        session: e.data?.session,
      });
    }
  };
}

/** An encrypted room `owner` creates and `guest` joins on invite; its ID once both see the join. */
export async function encryptedRoom(owner: MatrixClient, guest: MatrixClient): Promise<string> {
  const guestId = guest.getUserId() as string;
  const { room_id: roomId } = await owner.createRoom({
    invite: [guestId],
    initial_state: [
      { type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } },
    ],
  });
  await eventually(() => guest.getRoom(roomId)?.getMyMembership() === 'invite', 'the invite');
  await guest.joinRoom(roomId);
  await eventually(() => owner.getRoom(roomId)?.getMember(guestId)?.membership === 'join', 'the join');
  return roomId;
}

export async function runCryptoScenario(target: CryptoTarget, prefix: string): Promise<void> {
  const aliceCreds = await register(target, `${prefix}alice`);
  const bobCreds = await register(target, `${prefix}bob`);
  const alice = await startCryptoClient(target, aliceCreds);
  const bobNetwork = new Gate();
  const bob = await startCryptoClient(target, bobCreds, bobNetwork);
  const clients = [alice, bob];
  try {
    // --- cross-signing: the first upload needs no UIA (replacing keys does: keys.test.ts) ----
    const uiaSeen: number[] = [];
    const authUpload = passwordUia(aliceCreds.userId, () => uiaSeen.push(401));
    const aliceCrypto = alice.getCrypto();
    const bobCrypto = bob.getCrypto();
    if (!aliceCrypto || !bobCrypto) throw new Error('no crypto');
    await aliceCrypto.bootstrapCrossSigning({ authUploadDeviceSigningKeys: authUpload });
    expect(uiaSeen).toEqual([]);
    await eventually(() => aliceCrypto.isCrossSigningReady(), 'cross-signing ready');
    await bobCrypto.bootstrapCrossSigning({ authUploadDeviceSigningKeys: authUpload });

    // --- an encrypted room ------------------------------------------------------------------
    const roomId = await encryptedRoom(alice, bob);
    expect(await aliceCrypto.isEncryptionEnabledInRoom(roomId)).toBe(true);
    await alice.sendTextMessage(roomId, 'hello bob, secretly');
    await waitDecrypted(bob, roomId, 'hello bob, secretly', 'bob decrypting alice');
    await bob.sendTextMessage(roomId, 'hi alice, secretly');
    await waitDecrypted(alice, roomId, 'hi alice, secretly', 'alice decrypting bob');
    // What the server stored is ciphertext.
    const messages = await api(
      target,
      aliceCreds.accessToken,
      `/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`,
    );
    const wire = (messages.chunk as { type: string; content: Record<string, unknown> }[]).filter(
      (e) => e.type === 'm.room.encrypted',
    );
    expect(wire.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(wire)).not.toContain('secretly');

    // --- a second device of Alice gets room keys and is verified by the first ----------------
    const alice2Creds = await login(target, aliceCreds.userId);
    const alice2 = await startCryptoClient(target, alice2Creds);
    clients.push(alice2);
    // Bob's client learns of the new device from device_lists.changed, then /keys/query.
    await eventually(async () => {
      const devices = await bobCrypto.getUserDeviceInfo([aliceCreds.userId]);
      return devices.get(aliceCreds.userId)?.has(alice2Creds.deviceId) === true;
    }, "bob knowing alice's second device");
    await bob.sendTextMessage(roomId, 'for both your devices');
    await waitDecrypted(alice2, roomId, 'for both your devices', "alice's second device decrypting");
    await waitDecrypted(alice, roomId, 'for both your devices', "alice's first device decrypting");
    await eventually(async () => {
      const devices = await aliceCrypto.getUserDeviceInfo([aliceCreds.userId]);
      return devices.get(aliceCreds.userId)?.has(alice2Creds.deviceId) === true;
    }, 'alice1 knowing alice2');
    expect(
      (await aliceCrypto.getDeviceVerificationStatus(aliceCreds.userId, alice2Creds.deviceId))
        ?.crossSigningVerified,
    ).toBe(false);
    await aliceCrypto.crossSignDevice(alice2Creds.deviceId);
    // Bob's client learns the signature from /keys/query after a device-list change.
    await eventually(
      async () =>
        (await bobCrypto.getDeviceVerificationStatus(aliceCreds.userId, alice2Creds.deviceId))
          ?.signedByOwner === true,
      "bob seeing alice2 signed by alice's self-signing key",
    );
    await eventually(
      async () =>
        (await aliceCrypto.getDeviceVerificationStatus(aliceCreds.userId, alice2Creds.deviceId))
          ?.crossSigningVerified === true,
      'alice2 verified by cross-signing',
    );

    // --- key backup ---------------------------------------------------------------------------
    await aliceCrypto.resetKeyBackup();
    const version = await aliceCrypto.getActiveSessionBackupVersion();
    expect(version).not.toBeNull();
    await eventually(
      async () => ((await api(target, aliceCreds.accessToken, '/room_keys/version')).count as number) >= 1,
      'room keys backed up',
    );
    const backupKey = await aliceCrypto.getSessionBackupPrivateKey();
    if (!backupKey || !version) throw new Error('no backup key');

    // --- a restart while a to-device message (the room key) waits for Bob's device: whatever
    // answer Bob's client had in flight is dropped, so only the stored queue can deliver it --
    bobNetwork.close();
    // A new room key, which goes to Bob's device as a to-device message while he is away.
    await aliceCrypto.forceDiscardSession(roomId);
    await alice.sendTextMessage(roomId, 'while you were away');
    const waiting = await api(target, bobCreds.accessToken, '/sync?timeout=0');
    const queued = (waiting.to_device as { events: { type: string }[] }).events;
    expect(queued.some((e) => e.type === 'm.room.encrypted')).toBe(true);
    await target.restart();
    bobNetwork.open();
    await waitDecrypted(bob, roomId, 'while you were away', 'bob decrypting after the restart');

    // --- a fresh device restores the backup and reads history no device shared with it ------
    const alice3Creds = await login(target, aliceCreds.userId);
    const alice3 = await startCryptoClient(target, alice3Creds);
    clients.push(alice3);
    const alice3Crypto = alice3.getCrypto();
    if (!alice3Crypto) throw new Error('no crypto');
    await alice3Crypto.storeSessionBackupPrivateKey(backupKey, version);
    const restored = await alice3Crypto.restoreKeyBackup();
    expect(restored.imported).toBeGreaterThanOrEqual(1);
    await waitDecrypted(
      alice3,
      roomId,
      'hello bob, secretly',
      'the fresh device decrypting history from the backup',
    );
  } finally {
    for (const c of clients) c.stopClient();
  }
}
