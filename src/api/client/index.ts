/**
 * Every Client-Server endpoint, one file per spec area. The router is built from this list.
 */
import type { Services } from '../../homeserver/services.ts';
import type { Endpoint } from '../endpoint.ts';
import { accountEndpoints } from './account.ts';
import { accountDataEndpoints } from './account-data.ts';
import { adminEndpoints } from './admin.ts';
import { appserviceEndpoints } from './appservice.ts';
import { capabilitiesEndpoints } from './capabilities.ts';
import { dehydratedDeviceEndpoints } from './dehydrated-device.ts';
import { deviceEndpoints } from './devices.ts';
import { discoveryEndpoints } from './discovery.ts';
import { filterEndpoints } from './filter.ts';
import { keysEndpoints } from './keys.ts';
import { loginEndpoints } from './login.ts';
import { mediaEndpoints } from './media.ts';
import { openIdEndpoints } from './openid.ts';
import { operatorEndpoints } from './operator.ts';
import { presenceEndpoints } from './presence.ts';
import { profileEndpoints } from './profile.ts';
import { pushRulesEndpoints } from './push-rules.ts';
import { receiptEndpoints } from './receipts.ts';
import { registerEndpoints } from './register.ts';
import { relationsEndpoints } from './relations.ts';
import { roomExtrasEndpoints } from './room-extras.ts';
import { roomKeysEndpoints } from './room-keys.ts';
import { roomReadEndpoints } from './room-read.ts';
import { roomsEndpoints } from './rooms.ts';
import { searchEndpoints } from './search.ts';
import { slidingSyncEndpoints } from './sliding-sync.ts';
import { spacesEndpoints } from './spaces.ts';
import { syncEndpoints } from './sync.ts';
import { toDeviceEndpoints } from './to-device.ts';
import { typingEndpoints } from './typing.ts';

export function clientEndpoints(services: Services): Endpoint[] {
  const { config } = services;
  return [
    ...discoveryEndpoints({
      baseUrl: config.publicBaseUrl,
      // How matrix-rust-sdk (Element X) and matrix-js-sdk learn that sliding sync is native.
      unstableFeatures: { 'org.matrix.simplified_msc3575': true, 'org.matrix.msc3814': true },
    }),
    ...capabilitiesEndpoints(services),
    ...[registerEndpoints, loginEndpoints, accountEndpoints, deviceEndpoints, profileEndpoints].flatMap((f) =>
      f(services),
    ),
    ...openIdEndpoints(services),
    ...[
      filterEndpoints,
      accountDataEndpoints,
      typingEndpoints,
      receiptEndpoints,
      presenceEndpoints,
      roomReadEndpoints,
      relationsEndpoints,
      searchEndpoints,
      spacesEndpoints,
      roomExtrasEndpoints,
    ].flatMap((f) => f(services)),
    ...roomsEndpoints(services),
    ...pushRulesEndpoints(services),
    ...syncEndpoints(services),
    ...slidingSyncEndpoints(services),
    ...mediaEndpoints(services),
    ...[keysEndpoints, dehydratedDeviceEndpoints, toDeviceEndpoints, roomKeysEndpoints].flatMap((f) =>
      f(services),
    ),
    ...[adminEndpoints, appserviceEndpoints, operatorEndpoints].flatMap((f) => f(services)),
  ];
}

/** Rate-limit classes named by the endpoints (per user when signed in, else per client address). */
export const RATE_LIMITS = {
  login: { perSecond: 0.2, burst: 5 },
  register: { perSecond: 0.1, burst: 5 },
  message: { perSecond: 10, burst: 50 },
  default: { perSecond: 50, burst: 200 },
} as const;
