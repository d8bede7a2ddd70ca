import { describe, expect, it } from 'vitest';
import type { IdentifiedPdu } from '../core/pdu.ts';
import type { StoredEvent } from '../storage/store.ts';
import { toClientEvent } from './client-event.ts';

function stored(
  pdu: Partial<IdentifiedPdu> & { event_id: string; type: string },
  extra: Partial<StoredEvent> = {},
): StoredEvent {
  return {
    event: {
      room_id: '!r:x',
      sender: '@alice:x',
      origin_server_ts: 1_000,
      content: {},
      prev_events: [],
      auth_events: [],
      depth: 3,
      hashes: { sha256: 'h' },
      signatures: { x: { 'ed25519:a': 's' } },
      ...pdu,
    } as IdentifiedPdu,
    roomId: '!r:x',
    stream: 5,
    depth: 3,
    outlier: false,
    rejected: null,
    softFailed: false,
    redactedBy: null,
    txn: null,
    ...extra,
  };
}

describe('toClientEvent', () => {
  const message = stored(
    {
      event_id: '$m',
      type: 'm.room.message',
      content: { body: 'hi' },
      unsigned: { transaction_id: 'forged', invite_room_state: [] },
    },
    { txn: { deviceId: 'DEV', txnId: 't1' } },
  );

  it('gives the client format with age and no federation fields', () => {
    const out = toClientEvent(message, { userId: '@bob:x', deviceId: 'B' }, 1_500);
    expect(out).toEqual({
      event_id: '$m',
      room_id: '!r:x',
      type: 'm.room.message',
      sender: '@alice:x',
      origin_server_ts: 1_000,
      content: { body: 'hi' },
      // Only the invite state of the PDU's own unsigned is passed on, never a transaction ID.
      unsigned: { age: 500, invite_room_state: [] },
    });
    expect(toClientEvent(message, null, 500).unsigned).toMatchObject({ age: 0 });
  });

  it('shows transaction_id to the sending device only', () => {
    expect(toClientEvent(message, { userId: '@alice:x', deviceId: 'DEV' }, 1_000).unsigned).toMatchObject({
      transaction_id: 't1',
    });
    expect(
      toClientEvent(message, { userId: '@alice:x', deviceId: 'OTHER' }, 1_000).unsigned,
    ).not.toHaveProperty('transaction_id');
    expect(toClientEvent(message, { userId: '@alice:x', deviceId: null }, 1_000).unsigned).not.toHaveProperty(
      'transaction_id',
    );
    expect(
      toClientEvent(message, { userId: '@mallory:x', deviceId: 'DEV' }, 1_000).unsigned,
    ).not.toHaveProperty('transaction_id');
  });

  it('drops room_id for sync, returns the PDU for the federation format', () => {
    expect(toClientEvent(message, null, 1_000, { withRoomId: false })).not.toHaveProperty('room_id');
    const raw = toClientEvent(message, null, 1_000, { format: 'federation' });
    expect(raw).toMatchObject({ auth_events: [], depth: 3, hashes: { sha256: 'h' }, unsigned: { age: 0 } });
  });

  it('adds prev_content for state events and redacted_because for redacted ones', () => {
    const name = stored({ event_id: '$n2', type: 'm.room.name', state_key: '', content: { name: 'New' } });
    const old = stored({
      event_id: '$n1',
      type: 'm.room.name',
      state_key: '',
      content: { name: 'Old' },
      sender: '@bob:x',
    });
    expect(toClientEvent(name, null, 1_000, { replaced: old })).toMatchObject({
      state_key: '',
      unsigned: { prev_content: { name: 'Old' }, replaces_state: '$n1', prev_sender: '@bob:x' },
    });
    // v11+ redactions carry `redacts` in content; it is shown at the top level too.
    const redaction = stored({
      event_id: '$x',
      type: 'm.room.redaction',
      content: { redacts: '$m', reason: 'r' },
    });
    const redacted = stored({ event_id: '$m', type: 'm.room.message' }, { redactedBy: '$x' });
    const out = toClientEvent(redacted, null, 1_000, { redactedBecause: redaction });
    expect(out.unsigned).toMatchObject({
      redacted_because: { event_id: '$x', redacts: '$m', type: 'm.room.redaction' },
    });
    const v1 = stored({ event_id: '$y', type: 'm.room.redaction', redacts: '$m', content: {} });
    expect(toClientEvent(v1, null, 1_000).redacts).toBe('$m');
  });
});
