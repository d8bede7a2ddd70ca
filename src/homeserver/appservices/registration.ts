/**
 * Application service registrations — application-service-api "Registration": the file a
 * bridge ships (YAML, read by the host) as an object: `id`, `url`, `as_token`, `hs_token`,
 * `sender_localpart`, `namespaces` (users, aliases, rooms: `exclusive` + `regex`),
 * `rate_limited`, `receive_ephemeral`, `protocols`. Checked here so a mistake stops start-up
 * with the key it is about.
 */

export interface Namespace {
  exclusive: boolean;
  /** The registration's regex as written. */
  source: string;
  /** Anchored at the start, as Synapse matches them (bridges' files are written for it). */
  regex: RegExp;
}

export interface AppserviceRegistration {
  id: string;
  /** Null: the service receives nothing (it only acts). */
  url: string | null;
  asToken: string;
  hsToken: string;
  senderLocalpart: string;
  namespaces: { users: Namespace[]; aliases: Namespace[]; rooms: Namespace[] };
  /** Default true ("rate_limited": whether requests from masqueraded users are rate-limited). */
  rateLimited: boolean;
  /**
   * MSC2409 / spec v1.x: typing, receipts and presence pushed in transactions; and, as
   * Synapse does under MSC2409, to-device messages for the service's users
   * (`de.sorunome.msc2409.to_device`). `de.sorunome.msc2409.push_ephemeral` (what
   * matrix-appservice's registrations write) means the same.
   */
  receiveEphemeral: boolean;
  /** Third-party protocols the service bridges (`/thirdparty/*`). */
  protocols: string[];
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export class RegistrationError extends Error {
  override readonly name = 'RegistrationError';
}

function need(cond: unknown, key: string, message: string): asserts cond {
  if (!cond) throw new RegistrationError(`${key}: ${message}`);
}

function namespaces(value: unknown, key: string): Namespace[] {
  if (value === undefined || value === null) return [];
  need(Array.isArray(value), key, 'must be a list');
  return value.map((ns, i) => {
    const at = `${key}[${i}]`;
    need(isObject(ns), at, 'must be a mapping with exclusive and regex');
    need(typeof ns.regex === 'string' && ns.regex !== '', `${at}.regex`, 'must be a non-empty string');
    need(
      ns.exclusive === undefined || typeof ns.exclusive === 'boolean',
      `${at}.exclusive`,
      'must be true or false',
    );
    let regex: RegExp;
    try {
      regex = new RegExp(`^(?:${ns.regex})`);
    } catch (err) {
      throw new RegistrationError(`${at}.regex: not a regular expression (${(err as Error).message})`);
    }
    return { exclusive: ns.exclusive === true, source: ns.regex, regex };
  });
}

/** Checks a parsed registration file; the error names the bad key. */
export function parseRegistration(doc: unknown): AppserviceRegistration {
  need(isObject(doc), 'registration', 'must be a mapping');
  for (const key of ['id', 'as_token', 'hs_token', 'sender_localpart'] as const) {
    need(typeof doc[key] === 'string' && doc[key] !== '', key, 'must be a non-empty string');
  }
  const url = doc.url;
  need(
    url === null || url === undefined || (typeof url === 'string' && URL.canParse(url)),
    'url',
    'must be an http(s) URL or null',
  );
  if (typeof url === 'string') need(/^https?:$/.test(new URL(url).protocol), 'url', 'must be http or https');
  need(
    /^[a-z0-9._=\-/+]+$/.test(doc.sender_localpart as string),
    'sender_localpart',
    'must be a valid user localpart (a-z 0-9 . _ = - / +)',
  );
  const ns = doc.namespaces ?? {};
  need(isObject(ns), 'namespaces', 'must be a mapping of users, aliases, rooms');
  for (const k of Object.keys(ns))
    need(['users', 'aliases', 'rooms'].includes(k), `namespaces.${k}`, 'unknown (users, aliases or rooms)');
  for (const flag of ['rate_limited', 'receive_ephemeral', 'de.sorunome.msc2409.push_ephemeral'] as const)
    need(doc[flag] === undefined || typeof doc[flag] === 'boolean', flag, 'must be true or false');
  const protocols = doc.protocols ?? [];
  need(
    Array.isArray(protocols) && protocols.every((p) => typeof p === 'string'),
    'protocols',
    'must be a list of strings',
  );
  return {
    id: doc.id as string,
    url: typeof url === 'string' ? url.replace(/\/+$/, '') : null,
    asToken: doc.as_token as string,
    hsToken: doc.hs_token as string,
    senderLocalpart: doc.sender_localpart as string,
    namespaces: {
      users: namespaces(ns.users, 'namespaces.users'),
      aliases: namespaces(ns.aliases, 'namespaces.aliases'),
      rooms: namespaces(ns.rooms, 'namespaces.rooms'),
    },
    rateLimited: doc.rate_limited !== false,
    receiveEphemeral: doc.receive_ephemeral === true || doc['de.sorunome.msc2409.push_ephemeral'] === true,
    protocols: protocols as string[],
  };
}

/** Several registrations together: IDs, tokens must be unique (a token names one service). */
export function checkRegistrations(list: readonly AppserviceRegistration[]): void {
  const seen = new Set<string>();
  for (const reg of list) {
    for (const [what, value] of [
      ['id', reg.id],
      ['as_token', reg.asToken],
      ['hs_token', reg.hsToken],
    ] as const) {
      const key = `${what}\u0000${value}`;
      if (seen.has(key))
        throw new RegistrationError(
          `${what}: two application services share ${what === 'id' ? value : 'a token'}`,
        );
      seen.add(key);
    }
  }
}

export const matches = (list: readonly Namespace[], value: string, exclusiveOnly = false): boolean =>
  list.some((ns) => (!exclusiveOnly || ns.exclusive) && ns.regex.test(value));
