/**
 * `hearth register-user`, like Synapse's `register_new_matrix_user`: creates an account,
 * optionally a server admin, either
 *
 * - against a running server, with its registration shared secret (Synapse's register_api.md:
 *   `GET /_synapse/admin/v1/register` for a nonce, then `POST` the account with an HMAC-SHA1 of
 *   nonce, user, password and admin flag), or
 * - directly on a server's data directory (`--data DIR`), with no server running.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseJson } from '../core/json.ts';
import { sharedSecretMac } from '../homeserver/admin/index.ts';
import { createHomeserver } from '../server.ts';
import { openSqliteStore } from '../storage/sqlite/index.ts';
import { SERVE_FLAGS } from './cli.ts';
import { readConfigFile } from './config.ts';

const USAGE = `Usage: hearth register-user [options] [SERVER_URL]

Creates a user on a Hearth homeserver, like Synapse's register_new_matrix_user.

  -u, --user LOCALPART      the new user's localpart (required)
  -p, --password PASSWORD   the new user's password (required)
  -a, --admin               make the user a server admin
      --no-admin            do not (the default)
  -t, --user-type TYPE      a user type (e.g. bot)
  -k, --shared-secret KEY   the server's registration_shared_secret
  -c, --config FILE         read registration_shared_secret (and, with --data, data and
                            server_name) from this hearth serve configuration file
      --data DIR            create the user directly in DIR (the server must not be running)
      --server-name NAME    with --data: the server name (default: that of the users already there)

SERVER_URL defaults to http://127.0.0.1:8008.
`;

export interface RegisterUserOptions {
  user: string;
  password: string;
  admin: boolean;
  userType?: string;
  sharedSecret?: string;
  serverUrl: string;
  data?: string;
  serverName?: string;
}

export function parseRegisterUserArgs(argv: string[]): RegisterUserOptions {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      user: { type: 'string', short: 'u' },
      password: { type: 'string', short: 'p' },
      admin: { type: 'boolean', short: 'a' },
      'no-admin': { type: 'boolean' },
      'user-type': { type: 'string', short: 't' },
      'shared-secret': { type: 'string', short: 'k' },
      config: { type: 'string', short: 'c' },
      data: { type: 'string' },
      'server-name': { type: 'string' },
    },
  });
  let sharedSecret = values['shared-secret'];
  let data = values.data;
  let serverName = values['server-name'];
  if (values.config !== undefined) {
    const loaded = readConfigFile(values.config, SERVE_FLAGS);
    sharedSecret ??= loaded.extras.registrationSharedSecret;
    const flag = (name: string) => {
      const at = loaded.argv.lastIndexOf(`--${name}`);
      return at === -1 ? undefined : loaded.argv[at + 1];
    };
    if (data !== undefined || sharedSecret === undefined) data ??= flag('data');
    serverName ??= flag('server-name');
  }
  if (!values.user) throw new Error('--user is required');
  if (!values.password) throw new Error('--password is required');
  if (values.admin && values['no-admin']) throw new Error('--admin and --no-admin contradict each other');
  if (positionals.length > 1) throw new Error('only one SERVER_URL');
  const serverUrl = positionals[0] ?? 'http://127.0.0.1:8008';
  if (!URL.canParse(serverUrl)) throw new Error(`${serverUrl} is not a URL`);
  if (data === undefined && sharedSecret === undefined) {
    throw new Error('give --shared-secret (or --config with registration_shared_secret), or --data DIR');
  }
  return {
    user: values.user,
    password: values.password,
    admin: values.admin === true,
    ...(values['user-type'] !== undefined ? { userType: values['user-type'] } : {}),
    ...(sharedSecret !== undefined ? { sharedSecret } : {}),
    serverUrl,
    ...(data !== undefined ? { data } : {}),
    ...(serverName !== undefined ? { serverName } : {}),
  };
}

/** Registers through the running server's shared-secret registration; the new user ID. */
export async function registerWithSharedSecret(
  options: RegisterUserOptions & { sharedSecret: string },
  fetchFn: typeof fetch = fetch,
): Promise<string> {
  const url = `${options.serverUrl.replace(/\/+$/, '')}/_synapse/admin/v1/register`;
  const first = await fetchFn(url);
  const nonceBody = parseJson(await first.text()) as { nonce?: unknown; error?: unknown };
  if (!first.ok || typeof nonceBody.nonce !== 'string') {
    throw new Error(`the server gave no nonce: ${first.status} ${String(nonceBody.error ?? '')}`);
  }
  const parts = [nonceBody.nonce, options.user, options.password, options.admin ? 'admin' : 'notadmin'];
  if (options.userType !== undefined) parts.push(options.userType);
  const res = await fetchFn(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      nonce: nonceBody.nonce,
      username: options.user,
      password: options.password,
      admin: options.admin,
      ...(options.userType !== undefined ? { user_type: options.userType } : {}),
      mac: await sharedSecretMac(options.sharedSecret, parts),
    }),
  });
  const body = parseJson(await res.text()) as { user_id?: unknown; errcode?: unknown; error?: unknown };
  if (!res.ok || typeof body.user_id !== 'string') {
    throw new Error(`${res.status} ${String(body.errcode ?? '')}: ${String(body.error ?? '')}`);
  }
  return body.user_id;
}

/** Creates the user directly in a data directory (no server running on it). */
export async function registerInDataDir(options: RegisterUserOptions & { data: string }): Promise<string> {
  const dir = resolve(options.data);
  mkdirSync(dir, { recursive: true });
  const store = await openSqliteStore({ path: join(dir, 'hearth.sqlite') });
  let serverName = options.serverName;
  if (serverName === undefined) {
    const { users } = await store.operator.listUsers({ limit: 1 });
    const first = users[0]?.userId;
    if (first === undefined) {
      await store.close();
      throw new Error('the data directory has no users yet: give --server-name');
    }
    serverName = first.slice(first.indexOf(':') + 1);
  }
  const hs = createHomeserver({ serverName, store });
  try {
    await hs.ready;
    const { userId } = await hs.admin.createUser(options.user, options.password);
    if (options.admin) await hs.admin.setAdmin(userId, true);
    return userId;
  } finally {
    await hs.close();
  }
}

export async function registerUserMain(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  let options: RegisterUserOptions;
  try {
    options = parseRegisterUserArgs(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  try {
    const userId =
      options.data !== undefined
        ? await registerInDataDir({ ...options, data: options.data })
        : await registerWithSharedSecret({ ...options, sharedSecret: options.sharedSecret as string });
    console.log(`Created ${userId}${options.admin ? ' (server admin)' : ''}`);
    return 0;
  } catch (err) {
    process.stderr.write(`hearth register-user: ${(err as Error).message}\n`);
    return 1;
  }
}
