/**
 * The `m.room.member` authorization rules: rule 5 of rooms v1–v5 and v12, rule 4 of v6–v11
 * (rooms/fragments/v1-auth-rules.md, v3-auth-rules.md, v8-auth-rules.md, rooms/v7.md knock,
 * rooms/v10.md knock_restricted, rooms/v11.md creator, rooms/v12.md).
 * Each function returns to allow and throws `AuthDenied` (via `deny`) to reject.
 */
import { stateKey } from '../pdu.ts';
import { isJsonObject } from '../power-levels.ts';
import {
  type AuthContext,
  contentOf,
  hasSignatureFrom,
  joinRuleOf,
  membershipOf,
  namedLevel,
  userLevel,
} from './context.ts';
import { domainOf } from './ids.ts';
import { deny } from './result.ts';
import { verifyThirdPartyInviteSignature } from './third-party-invite.ts';

export function checkMembership(ctx: AuthContext): void {
  const { event, content, version } = ctx;
  const target = event.state_key;
  if (typeof target !== 'string') deny('m.room.member event has no state_key');
  if (!Object.hasOwn(content, 'membership')) deny('m.room.member event has no membership in its content');
  const membership = content.membership;

  if (version.restrictedJoinRule && Object.hasOwn(content, 'join_authorised_via_users_server')) {
    const authoriser = content.join_authorised_via_users_server;
    const server = domainOf(authoriser);
    if (typeof authoriser !== 'string' || !authoriser.startsWith('@') || !server) {
      deny('join_authorised_via_users_server is not a user ID');
    }
    const signedBy = ctx.options.isSignedBy ?? hasSignatureFrom;
    if (!signedBy(event, server)) {
      deny(`the event is not signed by ${server}, the server of join_authorised_via_users_server`);
    }
  }

  switch (membership) {
    case 'join':
      checkJoin(ctx, target);
      return;
    case 'invite':
      checkInvite(ctx, target);
      return;
    case 'leave':
      checkLeave(ctx, target);
      return;
    case 'ban':
      checkBan(ctx, target);
      return;
    case 'knock':
      if (!version.knockJoinRule) break;
      checkKnock(ctx, target);
      return;
  }
  deny(`unknown membership ${JSON.stringify(membership)}`);
}

function checkJoin(ctx: AuthContext, target: string): void {
  const { event, create, sender, version, content } = ctx;
  // The creator's own first join: its only prev_event is the create event.
  const creator = version.implicitRoomCreator ? create.sender : contentOf(create).creator;
  if (Array.isArray(event.prev_events) && event.prev_events.length === 1) {
    const [prev] = safeReferencedIds(event.prev_events);
    if (prev === create.event_id && target === creator) return;
  }
  if (sender !== target) deny('the sender cannot join on behalf of another user');
  const current = membershipOf(ctx, sender);
  if (current === 'ban') deny('the sender is banned from the room');
  const joinRule = joinRuleOf(ctx);
  if (joinRule === 'invite' || (version.knockJoinRule && joinRule === 'knock')) {
    if (current === 'invite' || current === 'join') return;
    deny(`the join rule is ${joinRule} and the sender is not invited`);
  }
  if (
    (version.restrictedJoinRule && joinRule === 'restricted') ||
    (version.knockRestrictedJoinRule && joinRule === 'knock_restricted')
  ) {
    if (current === 'invite' || current === 'join') return;
    const authoriser = content.join_authorised_via_users_server;
    if (typeof authoriser !== 'string') {
      deny(`the join rule is ${joinRule} and the join has no join_authorised_via_users_server`);
    }
    if (membershipOf(ctx, authoriser) !== 'join') {
      deny(`join_authorised_via_users_server ${authoriser} is not joined to the room`);
    }
    if (userLevel(ctx, authoriser) < namedLevel(ctx, 'invite')) {
      deny(`join_authorised_via_users_server ${authoriser} does not have the invite level`);
    }
    return;
  }
  if (joinRule === 'public') return;
  deny(`the join rule ${JSON.stringify(joinRule)} does not allow joining`);
}

function checkInvite(ctx: AuthContext, target: string): void {
  const { content, sender } = ctx;
  if (Object.hasOwn(content, 'third_party_invite')) {
    checkThirdPartyInvite(ctx, target);
    return;
  }
  if (membershipOf(ctx, sender) !== 'join') deny('the inviter is not joined to the room');
  const targetMembership = membershipOf(ctx, target);
  if (targetMembership === 'join') deny('the invitee is already joined');
  if (targetMembership === 'ban') deny('the invitee is banned');
  if (userLevel(ctx, sender) >= namedLevel(ctx, 'invite')) return;
  deny('the inviter does not have the invite level');
}

function checkThirdPartyInvite(ctx: AuthContext, target: string): void {
  const { content, sender, state } = ctx;
  if (membershipOf(ctx, target) === 'ban') deny('the invitee is banned');
  const thirdPartyInvite = content.third_party_invite;
  const signed = isJsonObject(thirdPartyInvite) ? thirdPartyInvite.signed : undefined;
  if (!isJsonObject(signed)) deny('third_party_invite has no signed object');
  if (!Object.hasOwn(signed, 'mxid') || !Object.hasOwn(signed, 'token')) {
    deny('third_party_invite.signed lacks mxid or token');
  }
  if (signed.mxid !== target) deny('third_party_invite.signed.mxid does not match the state_key');
  const token = signed.token;
  const inviteEvent =
    typeof token === 'string' ? state.get(stateKey('m.room.third_party_invite', token)) : undefined;
  if (!inviteEvent) deny('no m.room.third_party_invite event matches third_party_invite.signed.token');
  if (inviteEvent.sender !== sender) deny('the sender did not send the m.room.third_party_invite event');
  const verify = ctx.options.verifyThirdPartyInviteSignature ?? verifyThirdPartyInviteSignature;
  if (verify(ctx.event, inviteEvent)) return;
  deny(
    'no signature in third_party_invite.signed matches a public key of the m.room.third_party_invite event',
  );
}

function checkLeave(ctx: AuthContext, target: string): void {
  const { sender, version } = ctx;
  const current = membershipOf(ctx, sender);
  if (sender === target) {
    if (current === 'invite' || current === 'join' || (version.knockJoinRule && current === 'knock')) return;
    deny(`the sender cannot leave with membership ${JSON.stringify(current ?? null)}`);
  }
  if (current !== 'join') deny('the sender is not joined to the room');
  const senderLevel = userLevel(ctx, sender);
  if (membershipOf(ctx, target) === 'ban' && senderLevel < namedLevel(ctx, 'ban')) {
    deny('the sender does not have the ban level needed to unban');
  }
  if (senderLevel >= namedLevel(ctx, 'kick') && userLevel(ctx, target) < senderLevel) return;
  deny('the sender does not have the kick level or the target is not below the sender');
}

function checkBan(ctx: AuthContext, target: string): void {
  const { sender } = ctx;
  if (membershipOf(ctx, sender) !== 'join') deny('the sender is not joined to the room');
  const senderLevel = userLevel(ctx, sender);
  if (senderLevel >= namedLevel(ctx, 'ban') && userLevel(ctx, target) < senderLevel) return;
  deny('the sender does not have the ban level or the target is not below the sender');
}

function checkKnock(ctx: AuthContext, target: string): void {
  const { sender, version } = ctx;
  const joinRule = joinRuleOf(ctx);
  if (!(joinRule === 'knock' || (version.knockRestrictedJoinRule && joinRule === 'knock_restricted'))) {
    deny(`the join rule ${JSON.stringify(joinRule)} does not allow knocking`);
  }
  if (sender !== target) deny('the sender cannot knock on behalf of another user');
  const current = membershipOf(ctx, sender);
  if (current !== 'ban' && current !== 'invite' && current !== 'join') return;
  deny(`the sender cannot knock with membership ${current}`);
}

function safeReferencedIds(refs: readonly unknown[]): unknown[] {
  return refs.map((ref) => {
    if (typeof ref === 'string') return ref;
    return Array.isArray(ref) ? ref[0] : undefined;
  });
}
