/**
 * A writer for the cache-marks test: on the SQLite store at `argv[2]`, sets the ignore list
 * of `@watched:hearth.test` to ignore `@u<n>:hearth.test`, and adds one-time key `<n>` to its
 * device, for n = 1, 2, … as fast as it can, printing `ack <n>` once both are acknowledged,
 * until it is killed.
 */
import { openSqliteStore } from '../index.ts';

const path = process.argv[2] as string;
const user = '@watched:hearth.test';
const store = await openSqliteStore({ path });

for (let n = 1; ; n++) {
  await store.userData.setAccountData(user, 'm.ignored_user_list', {
    ignored_users: { [`@u${n}:hearth.test`]: {} },
  });
  await store.e2ee.addOneTimeKeys(user, 'DEVICE', [
    { algorithm: 'signed_curve25519', keyId: `K${n}`, key: { key: String(n) } },
  ]);
  process.stdout.write(`ack ${n}\n`);
}
