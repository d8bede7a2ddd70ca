/**
 * The rooms service as clients reach it, with the operator's rules in front: a room an admin
 * blocked cannot be joined or invited to (`DELETE /_synapse/admin/v2/rooms/{roomId}` with
 * `block`); an alias in an application service's exclusive namespace is that service's
 * (application-service-api "Registration": M_EXCLUSIVE); an unknown alias or user in a
 * service's namespace is asked of the service first ("Querying"); the same for users' profiles.
 */
import type { AccountsService } from './accounts/index.ts';
import type { AdminService } from './admin/index.ts';
import type { AppservicesService } from './appservices/index.ts';
import { type HomeserverContext, isLocalId } from './context.ts';
import { forbidden, isMatrixError } from './errors.ts';
import type { RoomsService } from './rooms/index.ts';

export function clientRooms(
  ctx: Pick<HomeserverContext, 'config'>,
  rooms: RoomsService,
  deps: { admin: AdminService; appservices: AppservicesService },
): RoomsService {
  const { admin, appservices } = deps;

  async function resolveAlias(alias: string): ReturnType<RoomsService['resolveAlias']> {
    try {
      return await rooms.resolveAlias(alias);
    } catch (err) {
      if (!isMatrixError(err) || err.errcode !== 'M_NOT_FOUND' || !isLocalId(ctx.config, alias)) throw err;
      if (!(await appservices.queryAlias(alias))) throw err;
      return rooms.resolveAlias(alias);
    }
  }

  const refuseBlocked = async (roomIdOrAlias: string) => {
    const roomId = roomIdOrAlias.startsWith('#')
      ? (await resolveAlias(roomIdOrAlias).catch(() => null))?.roomId
      : roomIdOrAlias;
    if (roomId && (await admin.roomBlocked(roomId)))
      throw forbidden('This room has been blocked on this server');
  };

  return Object.assign(Object.create(rooms) as RoomsService, {
    resolveAlias,
    async join(...args: Parameters<RoomsService['join']>) {
      await refuseBlocked(args[1]);
      return rooms.join(...args);
    },
    async invite(...args: Parameters<RoomsService['invite']>) {
      await refuseBlocked(args[1]);
      return rooms.invite(...args);
    },
    async createAlias(...args: Parameters<RoomsService['createAlias']>) {
      appservices.checkAlias(args[1], args[0]);
      return rooms.createAlias(...args);
    },
    async createRoom(...args: Parameters<RoomsService['createRoom']>) {
      const [userId, body] = args;
      if (typeof body.room_alias_name === 'string') {
        appservices.checkAlias(`#${body.room_alias_name}:${ctx.config.serverName}`, userId);
      }
      return rooms.createRoom(...args);
    },
  });
}

/**
 * The accounts service as clients reach it: a profile asked of an unknown local user in an
 * application service's namespace is asked of the service first, which may create the user
 * (application-service-api "Query User").
 */
export function askServicesAboutUsers(
  ctx: Pick<HomeserverContext, 'config'>,
  accounts: AccountsService,
  appservices: AppservicesService,
): AccountsService {
  const retry =
    <A extends [string, ...unknown[]], R>(f: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await f(...args);
      } catch (err) {
        if (!isMatrixError(err) || err.errcode !== 'M_NOT_FOUND' || !isLocalId(ctx.config, args[0]))
          throw err;
        if (!(await appservices.queryUser(args[0]))) throw err;
        return f(...args);
      }
    };
  return Object.assign(Object.create(accounts) as AccountsService, {
    getProfile: retry(accounts.getProfile),
    getProfileField: retry(accounts.getProfileField),
  });
}
