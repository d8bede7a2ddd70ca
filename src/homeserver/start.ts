/**
 * Starting the homeserver's services on an open store: the configuration with its defaults,
 * this server's signing key (created on the first start, read back on every later one), and
 * the context every service is given. `createHomeserver` (src/server.ts) calls it and puts
 * the HTTP layer in front; homeserver tests call it directly, with no HTTP in between.
 */
import { encodeBase64Url } from '../core/base64.ts';
import { type SigningKey, signingKeyFromSeed } from '../core/crypto.ts';
import { P2P_KEY_VERSION, p2pServerName } from '../core/p2p-identity.ts';
import { DEFAULT_ROOM_VERSION } from '../core/room-versions.ts';
import type { Store } from '../storage/store.ts';
import type { AppserviceRegistration, OutboundFetch } from './appservices/index.ts';
import {
  type Clock,
  type HomeserverConfig,
  type HomeserverContext,
  type Logger,
  type Random,
  type RegistrationPolicy,
  type SupportInfo,
  silentLogger,
  systemClock,
  type TurnConfig,
  webRandom,
} from './context.ts';
import { hearCommitsElsewhere } from './elsewhere.ts';
import { DEFAULT_MAX_UPLOAD_BYTES } from './media/index.ts';
import type { Thumbnailer } from './media/thumbnail.ts';
import { createNotifier } from './notifier.ts';
import {
  type E2eeRemote,
  type FederationPort,
  federationOff,
  type KeyStore,
  ownKeyStore,
  type RemoteMediaPort,
} from './ports.ts';
import { createServices, type Services } from './services.ts';

export interface ServicesOptions {
  serverName: string;
  /**
   * P2P mode (DESIGN.md "Identity"): the server name is the lowercase hex of the public key of
   * the seed in the store (`openP2pIdentity` reads it before the homeserver is created) and the
   * signing key ID is `ed25519:p2p`. Start-up fails if the name is not the seed's.
   */
  p2p?: boolean;
  registration?: RegistrationPolicy;
  guestAccess?: boolean;
  defaultRoomVersion?: string;
  publicBaseUrl?: string;
  passwordIterations?: number;
  maxSyncTimeoutMs?: number;
  accessTokenLifetimeMs?: number | null;
  /** Largest upload to the content repository, in bytes; default 50 MiB. */
  maxUploadBytes?: number;
  /** Joins ask for partial state (send_join `omit_members`); default true. */
  partialStateJoins?: boolean;
  turn?: TurnConfig;
  support?: SupportInfo;
  /** Application services (bridges), their registrations already checked. */
  appservices?: readonly AppserviceRegistration[];
  /** Synapse's `registration_shared_secret` (`/_synapse/admin/v1/register`). */
  registrationSharedSecret?: string;
  /**
   * Outgoing HTTP for application services and push gateways (`fetch`). Without it (a
   * browser), pushers are stored and reported as not delivered, and services get nothing.
   */
  outboundFetch?: OutboundFetch;
  /** Makes thumbnails where the host can decode images (see `media/thumbnail.ts`). */
  thumbnailer?: Thumbnailer;
  /** Other servers' media; federation's hook. Without it, remote media is 404 M_NOT_FOUND. */
  remoteMedia?: RemoteMediaPort;
  clock?: Clock;
  random?: Random;
  logger?: Logger;
  /** Requests to other servers; without it (and without `connect`), each answers "federation is off". */
  federationPort?: FederationPort;
  /** Other servers' signing keys; without it (and without `connect`), only this server's key is known. */
  keyStore?: KeyStore;
  /**
   * Called once this server's signing key is loaded, with what federation is built on: the
   * composition root (src/server.ts) plugs src/federation in here, so the homeserver never
   * imports it. What it returns stands in for the defaults; `federationPort`/`keyStore`/`remoteMedia` win.
   */
  connect?: (base: FederationBase) => {
    port?: FederationPort;
    keys?: KeyStore;
    e2eeRemote?: E2eeRemote;
    remoteMedia?: RemoteMediaPort;
  };
}

/** What federation is built on: the context without the federation it is about to be given. */
export type FederationBase = Omit<HomeserverContext, 'federation' | 'keys'>;

/** Name of the secret holding this server's ed25519 seed in the store. */
export const SIGNING_SEED_SECRET = 'signing_key_seed';

/**
 * The seed and P2P server name of the homeserver kept in `store`, creating the seed on first
 * use: a P2P host calls this before `createHomeserver`, whose server name it is.
 */
export async function openP2pIdentity(
  store: Store,
  random: Random = webRandom,
): Promise<{ seed: Uint8Array; serverName: string }> {
  const seed = await store.federation.putSecretOnce(SIGNING_SEED_SECRET, random.bytes(32));
  const { publicKey } = await signingKeyFromSeed(seed, P2P_KEY_VERSION);
  return { seed, serverName: p2pServerName(publicKey) };
}

export function homeserverConfig(options: ServicesOptions): HomeserverConfig {
  return {
    serverName: options.serverName,
    registration: options.registration ?? 'token',
    guestAccess: options.guestAccess ?? false,
    defaultRoomVersion: options.defaultRoomVersion ?? DEFAULT_ROOM_VERSION,
    publicBaseUrl: options.publicBaseUrl,
    passwordIterations: options.passwordIterations ?? 210_000,
    maxSyncTimeoutMs: Math.min(options.maxSyncTimeoutMs ?? 25_000, 25_000),
    accessTokenLifetimeMs: options.accessTokenLifetimeMs ?? null,
    maxUploadBytes: options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES,
    ...(options.turn ? { turn: options.turn } : {}),
    ...(options.support ? { support: options.support } : {}),
    pushDelivery: options.outboundFetch !== undefined,
    ...(options.partialStateJoins !== undefined ? { partialStateJoins: options.partialStateJoins } : {}),
  };
}

export async function startServices(
  store: Store,
  options: ServicesOptions,
): Promise<{ ctx: HomeserverContext; services: Services }> {
  const random = options.random ?? webRandom;
  // The first start creates the seed; later starts (and racing first starts) read it back.
  const seed = await store.federation.putSecretOnce(SIGNING_SEED_SECRET, random.bytes(32));
  // One derivation (the costly part where ed25519 runs as plain JavaScript, as in the WASI
  // component): the key ID's version comes from the public key itself.
  const probe = await signingKeyFromSeed(seed, 'probe');
  if (options.p2p && p2pServerName(probe.publicKey) !== options.serverName) {
    throw new Error(`P2P mode: the server name ${options.serverName} is not the hex of this store's key`);
  }
  const version = options.p2p
    ? P2P_KEY_VERSION
    : `a_${encodeBase64Url(probe.publicKey.slice(0, 3)).replace(/[^a-zA-Z0-9]/g, '_')}`;
  const signingKey: SigningKey = { ...probe, keyId: `ed25519:${version}` };
  const base: FederationBase = {
    config: homeserverConfig(options),
    store,
    clock: options.clock ?? systemClock,
    random,
    logger: options.logger ?? silentLogger,
    signingKey,
    notifier: createNotifier(),
  };
  // Two homeservers on one database (two `hearth serve` on one `--data`): each one's
  // long-polls hear of what the other stored. Stops as the store closes.
  hearCommitsElsewhere(base);
  const connected = options.connect?.(base) ?? {};
  const ctx: HomeserverContext = {
    ...base,
    federation: options.federationPort ?? connected.port ?? federationOff,
    keys: options.keyStore ?? connected.keys ?? ownKeyStore(base.config.serverName, base.signingKey),
  };
  return {
    ctx,
    services: createServices(ctx, {
      thumbnailer: options.thumbnailer,
      remoteMedia: options.remoteMedia ?? connected.remoteMedia,
      e2eeRemote: connected.e2eeRemote,
      appservices: options.appservices ?? [],
      ...(options.outboundFetch ? { outboundFetch: options.outboundFetch } : {}),
      ...(options.registrationSharedSecret ? { sharedSecret: options.registrationSharedSecret } : {}),
    }),
  };
}
