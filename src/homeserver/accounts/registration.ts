/**
 * Registration — client-server-api/_index.md "Account registration", "Token-authenticated
 * registration" and guest access ("Guest access"), and the operator's `createUser`.
 */
import { isValidOpaqueId } from '../../core/identifiers.ts';
import { StoreError } from '../../storage/store.ts';
import { type HomeserverContext, randomString } from '../context.ts';
import { forbidden, guestAccessForbidden, MatrixError, missingParam, userInUse } from '../errors.ts';
import { checkNewPassword } from './credentials.ts';
import type { AccountsService, RegisterInput, RegisterResult } from './index.ts';
import { hashPassword } from './passwords.ts';
import { checkDeviceId, type Sessions } from './sessions.ts';
import { DUMMY, REGISTRATION_TOKEN, type StageHandler, type Uia } from './uia.ts';
import { generatedLocalpart, userIdForUsername } from './usernames.ts';

/** Registration tokens are opaque IDs of at most 64 characters ("Token-authenticated registration"). */
const MAX_REGISTRATION_TOKEN_LENGTH = 64;

async function registrationTokenValid(ctx: HomeserverContext, token: string): Promise<boolean> {
  if (!isValidOpaqueId(token, MAX_REGISTRATION_TOKEN_LENGTH)) return false;
  const t = await ctx.store.accounts.getRegistrationToken(token);
  if (!t) return false;
  if (t.expiresAt !== null && t.expiresAt <= ctx.clock.now()) return false;
  return t.usesAllowed === null || t.completed < t.usesAllowed;
}

/** The UIA `m.login.registration_token` stage. */
export function registrationTokenStage(ctx: HomeserverContext): StageHandler {
  return async (auth) => {
    if (typeof auth.token !== 'string')
      throw missingParam('auth.token is required for m.login.registration_token');
    if (!(await registrationTokenValid(ctx, auth.token))) {
      throw new MatrixError(401, 'M_UNAUTHORIZED', 'Invalid registration token');
    }
    return { remember: { registrationToken: auth.token } };
  };
}

export type Registration = Pick<
  AccountsService,
  'register' | 'createUser' | 'createRegistrationToken' | 'registrationTokenValid' | 'checkUsernameAvailable'
>;

export function createRegistration(
  ctx: HomeserverContext,
  deps: { sessions: Sessions; uia: Uia },
): Registration {
  const { store, clock, config, random, logger } = ctx;
  const { sessions, uia } = deps;

  async function checkAvailable(userId: string): Promise<void> {
    if (await store.accounts.getUser(userId)) throw userInUse('This user ID is already taken');
  }

  async function registerGuest(input: RegisterInput): Promise<RegisterResult> {
    if (!config.guestAccess) throw guestAccessForbidden('Guest access is disabled on this homeserver');
    for (;;) {
      const userId = `@${generatedLocalpart(random)}:${config.serverName}`;
      const deviceId = sessions.newDeviceId();
      const accessToken = sessions.newToken('hat');
      const refreshToken = input.refreshToken ? sessions.newToken('hrt') : undefined;
      const { expiresAt, expiresInMs } = sessions.tokenExpiry(input.refreshToken === true);
      try {
        await store.accounts.createUser(
          { userId, passwordHash: null, createdAt: clock.now(), isGuest: true, userType: null },
          {
            session: {
              userId,
              deviceId,
              // registration.yaml: for guests every parameter but this one is ignored.
              displayName: input.initialDeviceDisplayName ?? null,
              accessToken,
              ...(refreshToken ? { refreshToken } : {}),
              expiresAt,
              now: clock.now(),
            },
          },
        );
      } catch (err) {
        if (err instanceof StoreError && err.code === 'CONFLICT') continue;
        throw err;
      }
      return {
        userId,
        session: {
          userId,
          deviceId,
          accessToken,
          ...(refreshToken ? { refreshToken } : {}),
          ...(expiresInMs !== undefined ? { expiresInMs } : {}),
        },
      };
    }
  }

  async function register(input: RegisterInput): Promise<RegisterResult> {
    if (input.kind === 'guest') return registerGuest(input);
    if (config.registration === 'closed') throw forbidden('Registration is disabled on this homeserver');
    if (input.guestAccessToken !== undefined) {
      throw forbidden('Upgrading a guest account is not supported by this homeserver');
    }
    // registration.yaml: username problems are reported before user-interactive auth.
    const requested =
      input.username === undefined ? undefined : userIdForUsername(input.username, config.serverName);
    if (requested) await checkAvailable(requested);
    checkDeviceId(input.deviceId);
    if (input.password !== undefined) checkNewPassword(input.password);

    const flows = config.registration === 'token' ? [[REGISTRATION_TOKEN]] : [[DUMMY]];
    const done = await uia.authenticate({ operation: 'register', userId: null, flows, auth: input.auth });

    if (input.password === undefined) throw missingParam('password is required');
    // The same checks again: another registration may have taken the name meanwhile.
    if (requested) await checkAvailable(requested);
    const passwordHash = await hashPassword(input.password, config.passwordIterations, random);
    const token = done.remembered.registrationToken;
    if (config.registration === 'token') {
      // A use counts only for a registration that happens (the check at the stage was a preview).
      if (typeof token !== 'string' || !(await store.accounts.useRegistrationToken(token, clock.now()))) {
        await uia.finish(done.sessionId);
        throw new MatrixError(401, 'M_UNAUTHORIZED', 'The registration token is no longer valid');
      }
    }

    let userId = requested;
    for (;;) {
      userId ??= `@${generatedLocalpart(random)}:${config.serverName}`;
      const localpart = userId.slice(1, userId.indexOf(':'));
      try {
        await store.accounts.createUser(
          { userId, passwordHash, createdAt: clock.now(), isGuest: false, userType: null },
          // The localpart as the first display name, as other servers do: rooms show a name at once.
          { profile: { displayname: localpart } },
        );
        break;
      } catch (err) {
        if (!(err instanceof StoreError && err.code === 'CONFLICT')) throw err;
        if (requested) throw userInUse('This user ID is already taken');
        userId = undefined;
      }
    }
    await uia.finish(done.sessionId);
    logger.info('registered a user', { userId });
    if (input.inhibitLogin) return { userId, session: null };
    const session = await sessions.issue({
      userId,
      ...(input.deviceId !== undefined ? { deviceId: input.deviceId } : {}),
      ...(input.initialDeviceDisplayName !== undefined
        ? { displayName: input.initialDeviceDisplayName }
        : {}),
      refreshToken: input.refreshToken === true,
    });
    return { userId, session };
  }

  return {
    register,

    async createRegistrationToken(options = {}) {
      const token = options.token ?? randomString(random, 16);
      await store.accounts.putRegistrationToken({
        token,
        usesAllowed: options.usesAllowed ?? null,
        completed: 0,
        expiresAt: options.expiresAt ?? null,
      });
      return token;
    },

    async createUser({ localpart, password, login }) {
      const userId = userIdForUsername(localpart, config.serverName);
      if (password !== undefined) checkNewPassword(password);
      const passwordHash =
        password === undefined ? null : await hashPassword(password, config.passwordIterations, random);
      try {
        await store.accounts.createUser(
          { userId, passwordHash, createdAt: clock.now(), isGuest: false, userType: null },
          { profile: { displayname: userId.slice(1, userId.indexOf(':')) } },
        );
      } catch (err) {
        if (err instanceof StoreError && err.code === 'CONFLICT') throw userInUse(`${userId} already exists`);
        throw err;
      }
      logger.info('created a user', { userId });
      return { userId, session: login ? await sessions.issue({ userId }) : null };
    },

    async registrationTokenValid(token) {
      if (config.registration === 'closed') throw forbidden('Registration is disabled on this homeserver');
      return registrationTokenValid(ctx, token);
    },

    async checkUsernameAvailable(username) {
      if (config.registration === 'closed') throw forbidden('Registration is disabled on this homeserver');
      const userId = userIdForUsername(username, config.serverName);
      await checkAvailable(userId);
      return userId;
    },
  };
}
