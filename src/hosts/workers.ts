/**
 * The Cloudflare Workers host (workerd): a Worker that hands every request to one Durable
 * Object, `HearthHomeserver`, which owns this homeserver — its store on the object's own SQLite
 * database (`storage/sqlite/durable-object.ts`) and the parts that live in memory (room locks,
 * the /sync notifier, typing, presence, rate limits). One object per server name, so every
 * request meets the same memory; when the platform evicts an idle object, the next request
 * starts it again from its SQLite.
 *
 * Settings are the Worker's vars and secrets, in the shape of `config.ts` (HEARTH_SERVER_NAME,
 * HEARTH_REGISTRATION, the HEARTH_SIGNING_SEED secret, …). PBKDF2 defaults to the floor:
 * Workers cap it at 100,000 iterations and bill it to the request's CPU time. A long-poll
 * /sync waits at most 25 s (the homeserver's cap); a Worker's wall time while its client is
 * connected is not limited, and waiting costs no CPU.
 *
 * Federation goes out through `fetch` (no SRV, no extra CAs: the platform's trust store);
 * outgoing transactions are sent while the object runs and resume when it next starts.
 *
 * `wrangler.toml` beside the README shows a deployment; tests run it in workerd through
 * miniflare (test/edge/workerd.test.ts).
 */
import { createHomeserver, type Homeserver } from '../server.ts';
import { type DurableObjectSqlStorage, openDurableObjectStore } from '../storage/sqlite/durable-object.ts';
import { createFetchHttpsTransport } from '../transport/https/fetch.ts';
import {
  announceRegistrationToken,
  homeserverOptions,
  misconfigured,
  PASSWORD_ITERATIONS_FLOOR,
  readHostConfig,
  type Settings,
} from './host-config.ts';

/** What the host uses of a Durable Object namespace binding. */
interface DurableObjectNamespaceLike {
  idFromName(name: string): unknown;
  get(id: unknown): { fetch(request: Request): Promise<Response> };
}

export interface HearthEnv {
  /** The binding of the `HearthHomeserver` class (`[[durable_objects.bindings]]` in wrangler.toml). */
  HEARTH: DurableObjectNamespaceLike;
  HEARTH_SERVER_NAME?: string;
  /** The other settings of `config.ts`, as vars and secrets. */
  [setting: string]: unknown;
}

/** What the host uses of `DurableObjectState`. */
interface DurableObjectStateLike {
  storage: DurableObjectSqlStorage;
}

function settingsOf(env: Record<string, unknown>): Settings {
  const settings: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (typeof value === 'string') settings[name] = value;
  return settings;
}

/** The Durable Object holding one homeserver. */
export class HearthHomeserver {
  private readonly answer: (request: Request) => Promise<Response>;

  constructor(state: DurableObjectStateLike, env: Record<string, unknown>) {
    let hs: Homeserver;
    try {
      const config = readHostConfig(settingsOf(env), { passwordIterations: PASSWORD_ITERATIONS_FLOOR });
      hs = createHomeserver(
        homeserverOptions(config, () => openDurableObjectStore(state.storage), {
          ...(config.federation ? { federation: { transport: createFetchHttpsTransport() } } : {}),
        }),
      );
      announceRegistrationToken(hs, config);
    } catch (error) {
      const refuse = misconfigured(error);
      this.answer = async () => refuse();
      return;
    }
    // The Worker in front forwards the client's request as it came (cf-connecting-ip included).
    this.answer = (request) =>
      hs.fetch(request, { clientAddress: request.headers.get('cf-connecting-ip') ?? 'unknown' });
  }

  fetch(request: Request): Promise<Response> {
    return this.answer(request);
  }
}

/** The Worker: every request goes to the object named after this server. */
export default {
  fetch(request: Request, env: HearthEnv): Promise<Response> {
    const name = env.HEARTH_SERVER_NAME;
    if (!name) {
      return Promise.resolve(
        Response.json({ errcode: 'M_UNKNOWN', error: 'HEARTH_SERVER_NAME is not set' }, { status: 503 }),
      );
    }
    return env.HEARTH.get(env.HEARTH.idFromName(name)).fetch(request);
  },
};
