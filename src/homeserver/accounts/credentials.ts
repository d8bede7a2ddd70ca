/**
 * Who is asking: the user an identifier names, password checks (in constant work whether or
 * not the user exists), the UIA password stage, and password login — client-server-api/_index.md
 * "Identifier types", "Password-based" and "Login".
 */
import type { JsonObject } from '../../core/canonical-json.ts';
import { isValidUserId, parseUserId } from '../../core/identifiers.ts';
import type { Auth, HomeserverContext } from '../context.ts';
import { badJson, forbidden, invalidParam, MatrixError, missingParam, userDeactivated } from '../errors.ts';
import { redeemLoginToken } from '../extras.ts';
import type { LoginInput, SessionGrant } from './index.ts';
import { hashPassword, needsRehash, verifyPassword } from './passwords.ts';
import { checkDeviceId, type Sessions } from './sessions.ts';
import { DUMMY, PASSWORD, type StageHandler } from './uia.ts';

/** Passwords longer than this are refused (Synapse's limit): nobody types more, and it bounds work. */
export const MAX_PASSWORD_LENGTH = 512;

export function checkNewPassword(password: string): void {
  if (password.length === 0) throw invalidParam('The password must not be empty');
  if (password.length > MAX_PASSWORD_LENGTH) {
    throw invalidParam(`The password is longer than ${MAX_PASSWORD_LENGTH} characters`);
  }
}

const invalidCredentials = () => forbidden('Invalid username or password');

export interface Credentials {
  /** The UIA `m.login.password` stage. */
  passwordStage: StageHandler;
  /** Flows proving the account's owner is present: the password, or nothing for accounts without one. */
  ownerFlows(auth: Auth | null): Promise<string[][]>;
  login(input: LoginInput): Promise<SessionGrant>;
}

export function createCredentials(ctx: HomeserverContext, sessions: Sessions): Credentials {
  const { store, config, random } = ctx;
  /** A hash to check against when the user is unknown, so a miss costs the same as a hit. */
  let decoyHash: Promise<string> | undefined;

  /** The local user a `m.id.user` identifier (localpart or full user ID) names. */
  function userIdFromIdentifierUser(user: string): string {
    if (user.startsWith('@')) {
      if (!isValidUserId(user, { historical: true })) throw invalidCredentials();
      const { localpart, serverName } = parseUserId(user, { historical: true });
      if (serverName !== config.serverName) throw invalidCredentials();
      return `@${localpart.toLowerCase()}:${serverName}`;
    }
    return `@${user.toLowerCase()}:${config.serverName}`;
  }

  /**
   * The user an identifier (or the deprecated `user` / `medium`+`address` keys) names.
   * Third-party IDs are never bound here, so they name nobody: 403 as the spec requires.
   */
  function resolveIdentifier(input: {
    identifier?: JsonObject;
    user?: string;
    medium?: string;
    address?: string;
  }): string {
    const id = input.identifier;
    if (id !== undefined) {
      const type = id.type;
      if (typeof type !== 'string') throw missingParam('identifier.type is required');
      if (type === 'm.id.user') {
        if (typeof id.user !== 'string') throw missingParam('identifier.user is required for m.id.user');
        return userIdFromIdentifierUser(id.user);
      }
      if (type === 'm.id.thirdparty') {
        if (typeof id.medium !== 'string' || typeof id.address !== 'string') {
          throw missingParam('identifier.medium and identifier.address are required for m.id.thirdparty');
        }
        throw forbidden('No account is bound to this third-party identifier');
      }
      if (type === 'm.id.phone') {
        if (typeof id.country !== 'string' || typeof id.phone !== 'string') {
          throw missingParam('identifier.country and identifier.phone are required for m.id.phone');
        }
        throw forbidden('No account is bound to this phone number');
      }
      throw new MatrixError(400, 'M_UNKNOWN', `Unknown identifier type ${JSON.stringify(type)}`);
    }
    if (input.user !== undefined) return userIdFromIdentifierUser(input.user);
    if (input.medium !== undefined || input.address !== undefined) {
      throw forbidden('No account is bound to this third-party identifier');
    }
    throw missingParam('identifier is required');
  }

  /** Checks a password for a user: the user ID on success, 403 otherwise. */
  async function checkPassword(userId: string, password: string): Promise<string> {
    const user = isValidUserId(userId, { historical: true }) ? await store.accounts.getUser(userId) : null;
    if (!user || user.passwordHash === null) {
      decoyHash ??= hashPassword('decoy', config.passwordIterations, random);
      await verifyPassword(password, await decoyHash);
      if (user?.deactivated) throw userDeactivated();
      throw invalidCredentials();
    }
    if (!(await verifyPassword(password, user.passwordHash))) throw invalidCredentials();
    if (user.deactivated) throw userDeactivated();
    if (needsRehash(user.passwordHash, config.passwordIterations)) {
      await store.accounts.updateUser(userId, {
        passwordHash: await hashPassword(password, config.passwordIterations, random),
      });
    }
    return userId;
  }

  const passwordStage: StageHandler = async (auth) => {
    if (auth.password === undefined) throw missingParam('auth.password is required for m.login.password');
    if (typeof auth.password !== 'string') throw badJson('auth.password must be a string');
    const identifier = auth.identifier;
    if (
      identifier !== undefined &&
      (typeof identifier !== 'object' || identifier === null || Array.isArray(identifier))
    ) {
      throw badJson('auth.identifier must be an object');
    }
    const userId = resolveIdentifier({
      identifier,
      user: typeof auth.user === 'string' ? auth.user : undefined,
      medium: typeof auth.medium === 'string' ? auth.medium : undefined,
      address: typeof auth.address === 'string' ? auth.address : undefined,
    });
    return { userId: await checkPassword(userId, auth.password) };
  };

  /** Flows proving the account's owner is present: the password, or nothing for accounts without one. */
  async function ownerFlows(auth: Auth | null): Promise<string[][]> {
    if (auth === null) return [[PASSWORD]];
    const user = await store.accounts.getUser(auth.userId);
    return user?.passwordHash ? [[PASSWORD]] : [[DUMMY]];
  }

  async function login(input: LoginInput): Promise<SessionGrant> {
    if (input.type === 'm.login.token') return tokenLogin(input);
    if (input.type !== 'm.login.password') {
      throw new MatrixError(400, 'M_UNKNOWN', `Unsupported login type ${JSON.stringify(input.type)}`);
    }
    if (input.password === undefined) throw missingParam('password is required for m.login.password');
    checkDeviceId(input.deviceId);
    const userId = await checkPassword(resolveIdentifier(input), input.password);
    if (input.deviceId !== undefined) {
      // login.yaml: "The given device ID must not be the same as a cross-signing key ID."
      const keys = await store.e2ee.getCrossSigningKeys(userId);
      for (const key of Object.values(keys)) {
        const ids = key.keys;
        if (typeof ids === 'object' && ids !== null && Object.hasOwn(ids, `ed25519:${input.deviceId}`)) {
          throw forbidden('The device ID is the same as a cross-signing key ID');
        }
      }
    }
    return issueFor(userId, input);
  }

  /** A session for a logged-in user, with the device the login named. */
  function issueFor(userId: string, input: LoginInput): Promise<SessionGrant> {
    return sessions.issue({
      userId,
      ...(input.deviceId !== undefined ? { deviceId: input.deviceId } : {}),
      ...(input.initialDeviceDisplayName !== undefined
        ? { displayName: input.initialDeviceDisplayName }
        : {}),
      refreshToken: input.refreshToken === true,
    });
  }

  /** login.yaml `m.login.token`: a token from `POST /login/get_token`, good once. */
  async function tokenLogin(input: LoginInput): Promise<SessionGrant> {
    if (typeof input.token !== 'string') throw missingParam('token is required for m.login.token');
    checkDeviceId(input.deviceId);
    const userId = await redeemLoginToken(ctx, input.token);
    if (userId === null) throw forbidden('Invalid or expired login token');
    const user = await store.accounts.getUser(userId);
    if (!user || user.deactivated) throw userDeactivated();
    return issueFor(userId, input);
  }

  return { passwordStage, ownerFlows, login };
}
