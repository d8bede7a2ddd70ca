/**
 * The Store conformance suite (STYLE.md §5): one set of tests every backend runs unchanged.
 * A backend's test file calls `storeConformance(target)` with a way to open its databases.
 */
import { describe } from 'vitest';
import { accountTests } from './accounts.ts';
import { e2eeTests } from './e2ee.ts';
import { eventIndexTests } from './event-index.ts';
import { lifecycleTests } from './lifecycle.ts';
import { operatorTests } from './operator.ts';
import { roomTests } from './rooms.ts';
import type { ConformanceTarget } from './testing.ts';
import { userDataTests } from './user-data.ts';

export type { ConformanceTarget } from './testing.ts';

export function storeConformance(target: ConformanceTarget): void {
  describe(`Store conformance — ${target.name}`, () => {
    describe('rooms', () => roomTests(target));
    describe('event indexes', () => eventIndexTests(target));
    describe('accounts', () => accountTests(target));
    describe('user data', () => userDataTests(target));
    describe('e2ee, media, federation', () => e2eeTests(target));
    describe('lifecycle', () => lifecycleTests(target));
    describe('operator', () => operatorTests(target));
  });
}
