/**
 * Hearth demo: a small chat app on the real, unmodified matrix-js-sdk, talking to a Matrix
 * homeserver that runs in this page's own Service Worker. The Hearth-specific lines are
 * `registerHomeserver(…)` and the backup buttons; everything else is what any Matrix client
 * does against matrix.org, with `baseUrl` set to this page's origin.
 *
 * The markup of both screens is in index.html (`<template>`s); this file wires it up.
 */
import {
  ClientEvent,
  createClient,
  Direction,
  EventType,
  HttpApiEvent,
  KnownMembership,
  type MatrixClient,
  type MatrixError,
  type MatrixEvent,
  MatrixEventEvent,
  Preset,
  type Room,
  RoomEvent,
  RoomMemberEvent,
  RoomStateEvent,
  SyncState,
} from 'matrix-js-sdk';
import { type P2pStatus, registerHomeserver } from '../src/hosts/page.ts';

// ---------------------------------------------------------------- sessions

interface Session {
  userId: string;
  accessToken: string;
  deviceId: string;
}

/**
 * Every account signed in on this browser is kept in localStorage, so a reload or a new tab
 * stays signed in. Which one *this tab* uses is kept in sessionStorage, so two tabs can be
 * two users of the one homeserver (how you chat with yourself in the demo).
 */
const SESSIONS_KEY = 'hearth-demo.sessions';
const LAST_KEY = 'hearth-demo.last';
const TAB_KEY = 'hearth-demo.user';

function storedSessions(): Record<string, Session> {
  return JSON.parse(localStorage.getItem(SESSIONS_KEY) ?? '{}') as Record<string, Session>;
}

function currentSession(): Session | undefined {
  const userId = sessionStorage.getItem(TAB_KEY) ?? localStorage.getItem(LAST_KEY);
  return userId ? storedSessions()[userId] : undefined;
}

function saveSession(session: Session): void {
  localStorage.setItem(SESSIONS_KEY, JSON.stringify({ ...storedSessions(), [session.userId]: session }));
  localStorage.setItem(LAST_KEY, session.userId);
  sessionStorage.setItem(TAB_KEY, session.userId);
}

function forgetSession(userId: string): void {
  const { [userId]: _gone, ...rest } = storedSessions();
  localStorage.setItem(SESSIONS_KEY, JSON.stringify(rest));
  if (localStorage.getItem(LAST_KEY) === userId) localStorage.removeItem(LAST_KEY);
  sessionStorage.removeItem(TAB_KEY);
}

// ---------------------------------------------------------------- DOM helpers

const app = document.getElementById('app') as HTMLElement;

/** Shows one of index.html's `<template>`s. */
function show(templateId: string): void {
  const template = document.getElementById(templateId) as HTMLTemplateElement;
  app.replaceChildren(template.content.cloneNode(true));
  for (const el of app.querySelectorAll('.server-name')) el.textContent = handle.serverName;
}

function $<T extends Element = HTMLElement>(selector: string): T {
  return app.querySelector(selector) as T;
}

/** `h('li', { className: 'x' }, 'text', child)`: a new element with properties and children. */
function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string | false | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const el = Object.assign(document.createElement(tag), props);
  el.append(...children.filter((c): c is Node | string => c !== false && c !== null && c !== undefined));
  return el;
}

function toast(message: string): void {
  const note = h('div', { className: 'toast', role: 'alert' }, message);
  document.body.append(note);
  setTimeout(() => note.remove(), 5000);
}

function errorText(err: unknown): string {
  return (err as MatrixError).data?.error ?? (err as Error).message ?? String(err);
}

// ---------------------------------------------------------------- start

/**
 * The relay the demo server runs beside it (`npm start`), if any: with one, this homeserver is
 * a P2P one — named by its key, federating browser to browser over WebRTC.
 */
async function relays(): Promise<string[]> {
  try {
    const answer = await fetch('/p2p.json');
    if (!answer.ok) return [];
    const body = (await answer.json()) as { relays?: unknown };
    return Array.isArray(body.relays) ? body.relays.filter((r): r is string => typeof r === 'string') : [];
  } catch {
    return [];
  }
}

const relayAddresses = await relays();
// Registers the Service Worker (the homeserver) and resolves once it controls this page.
const handle = await registerHomeserver({
  workerUrl: '/sw.js',
  ...(relayAddresses.length > 0 ? { p2p: { relays: relayAddresses } } : {}),
}).catch((err: unknown) => {
  $('.status').textContent = `The homeserver could not start: ${String(err)}`;
  throw err;
});
handle.p2p?.onStatus(renderPeers);

function newClient(session?: Session): MatrixClient {
  // All it takes: the homeserver's URL is this page's origin. (`disableVoip`: no calls here,
  // so the SDK need not ask for TURN servers.)
  return createClient({ baseUrl: handle.baseUrl, fetchFn: handle.fetch, disableVoip: true, ...session });
}

let client: MatrixClient | undefined;
let selectedRoomId: string | undefined;
let paginating = false;

// After a backup import every tab of this origin reloads: their clients' state is gone.
const tabs = new BroadcastChannel('hearth-demo');
tabs.onmessage = (e) => {
  if (e.data === 'reload') location.reload();
};

const saved = currentSession();
if (saved) void startChat(saved);
else showSignIn();

// ---------------------------------------------------------------- sign up / sign in

function showSignIn(message = ''): void {
  client?.stopClient();
  client = undefined;
  show('sign-in');
  const form = $<HTMLFormElement>('form');
  const status = $('.status');
  status.textContent = message;

  const submit = async (mode: 'register' | 'login') => {
    if (!form.reportValidity()) return;
    const { username, password } = Object.fromEntries(new FormData(form)) as Record<string, string>;
    status.textContent = mode === 'register' ? 'Creating your account…' : 'Signing in…';
    try {
      const session = await (mode === 'register' ? register : login)(username ?? '', password ?? '');
      saveSession(session);
      await startChat(session);
    } catch (err) {
      status.textContent = errorText(err);
    }
  };
  form.onsubmit = (e) => {
    e.preventDefault();
    void submit('login');
  };
  $<HTMLButtonElement>('button[name=register]').onclick = () => submit('register');

  // Accounts already signed in on this browser: one click to use one in this tab.
  const others = $('.others');
  for (const session of Object.values(storedSessions())) {
    const onclick = () => {
      saveSession(session);
      void startChat(session);
    };
    others.append(' ', h('button', { type: 'button', className: 'link', onclick }, session.userId));
    others.hidden = false;
  }
  $<HTMLInputElement>('input[name=username]').focus();
}

/** Registration is user-interactive auth: the first request opens a session, `m.login.dummy` completes it. */
async function register(username: string, password: string): Promise<Session> {
  const anon = newClient();
  let session: string | undefined;
  try {
    const done = await anon.registerRequest({ username, password });
    return { userId: done.user_id, accessToken: done.access_token ?? '', deviceId: done.device_id ?? '' };
  } catch (err) {
    const data = (err as MatrixError).data as { session?: string; flows?: unknown };
    if ((err as MatrixError).httpStatus !== 401 || !data?.flows) throw err;
    session = data.session;
  }
  const done = await anon.registerRequest({ username, password, auth: { type: 'm.login.dummy', session } });
  return { userId: done.user_id, accessToken: done.access_token ?? '', deviceId: done.device_id ?? '' };
}

async function login(username: string, password: string): Promise<Session> {
  const res = await newClient().loginRequest({
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: username },
    password,
  });
  return { userId: res.user_id, accessToken: res.access_token, deviceId: res.device_id };
}

// ---------------------------------------------------------------- the chat screen

async function startChat(session: Session): Promise<void> {
  client?.stopClient();
  app.replaceChildren(h('main', { className: 'center' }, h('p', { className: 'status' }, 'Syncing…')));
  const c = newClient(session);
  client = c;
  selectedRoomId = undefined;
  // End-to-end encryption: the Rust crypto, its keys in this origin's IndexedDB, one database
  // per account and device (tabs of one origin may be signed in as different users).
  try {
    await c.initRustCrypto({ cryptoDatabasePrefix: `hearth-demo:${session.userId}:${session.deviceId}` });
  } catch (err) {
    toast(`Encryption is unavailable: ${errorText(err)}`);
  }
  c.on(MatrixEventEvent.Decrypted, scheduleRender);
  c.on(ClientEvent.Room, scheduleRender);
  c.on(RoomEvent.Timeline, scheduleRender);
  c.on(RoomEvent.Name, scheduleRender);
  c.on(RoomEvent.MyMembership, scheduleRender);
  c.on(RoomEvent.LocalEchoUpdated, scheduleRender);
  c.on(RoomStateEvent.Members, scheduleRender);
  c.on(RoomMemberEvent.Membership, scheduleRender);
  c.on(HttpApiEvent.SessionLoggedOut, () => {
    forgetSession(session.userId);
    showSignIn('Your session ended (signed out, or the homeserver was reset). Please sign in again.');
  });
  c.once(ClientEvent.Sync, (state: SyncState) => {
    if (state === SyncState.Prepared && client === c) showChat(c, session);
  });
  await c.startClient({ initialSyncLimit: 30 });
}

function showChat(c: MatrixClient, session: Session): void {
  show('chat');
  $('.me').textContent = session.userId;
  $('.me').title = session.userId;
  $('#server-name').title = handle.serverName;
  $<HTMLButtonElement>('button[name=copy]').onclick = copyServerName;
  renderPeers(handle.p2p?.status() ?? null);
  // A menu command closes the menu.
  const menu = $<HTMLDetailsElement>('.menu');
  menu.addEventListener('click', (e) => {
    if ((e.target as Element).closest('.menu-items button')) menu.open = false;
  });
  $<HTMLButtonElement>('button[name=export]').onclick = exportBackup;
  $<HTMLButtonElement>('button[name=admin]').onclick = () => void openAdminPanel(session.userId);
  $<HTMLInputElement>('input[name=import]').onchange = importBackup;
  $<HTMLButtonElement>('button[name=add-account]').onclick = () => {
    sessionStorage.removeItem(TAB_KEY);
    showSignIn();
  };
  $<HTMLButtonElement>('button[name=logout]').onclick = async () => {
    await c.logout(true).catch(() => undefined);
    forgetSession(session.userId);
    showSignIn('Signed out.');
  };
  $<HTMLButtonElement>('button[name=members]').onclick = () => {
    $('.members').hidden = !$('.members').hidden;
    render();
  };
  void handle.status().then(({ persisted }) => {
    const where =
      handle.mode === 'service-worker' ? 'in the Service Worker' : 'in this tab (no Service Worker here)';
    const storage = persisted ? 'storage is persistent' : 'the browser may clear its storage';
    $('.storage').textContent = `Runs ${where}; ${storage}.`;
  });

  $<HTMLFormElement>('.new-room').onsubmit = async (e) => {
    e.preventDefault();
    const input = $<HTMLInputElement>('.new-room input');
    try {
      const encrypted = $<HTMLInputElement>('.new-room input[name=encrypted]').checked;
      const { room_id } = await c.createRoom({
        name: input.value,
        preset: Preset.PrivateChat,
        // Messages of an encrypted room are encrypted by the clients; the server sees ciphertext.
        ...(encrypted
          ? {
              initial_state: [
                { type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } },
              ],
            }
          : {}),
      });
      input.value = '';
      selectRoom(room_id);
    } catch (err) {
      toast(`Could not create the room: ${errorText(err)}`);
    }
  };
  const composer = $<HTMLFormElement>('.composer');
  const body = $<HTMLTextAreaElement>('.composer textarea');
  composer.onsubmit = (e) => {
    e.preventDefault();
    const text = body.value.trim();
    if (!text || !selectedRoomId) return;
    body.value = '';
    c.sendTextMessage(selectedRoomId, text).catch((err) => toast(`Not sent: ${errorText(err)}`));
  };
  body.onkeydown = (e) => {
    // Enter sends; Shift+Enter starts a new line.
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      composer.requestSubmit();
    }
  };
  $<HTMLFormElement>('.invite-form').onsubmit = async (e) => {
    e.preventDefault();
    const input = $<HTMLInputElement>('.invite-form input');
    try {
      if (selectedRoomId) await c.invite(selectedRoomId, input.value.trim());
      input.value = '';
    } catch (err) {
      toast(`Could not invite: ${errorText(err)}`);
    }
  };
  $('#timeline').onscroll = () => {
    if ($('#timeline').scrollTop < 80) void loadOlder();
  };
  render(true);
}

function selectRoom(roomId: string): void {
  selectedRoomId = roomId;
  render(true);
}

// A sync brings many SDK events at once: draw once per frame.
let renderQueued = false;
function scheduleRender(): void {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function render(jumpToBottom = false): void {
  const timeline = $('#timeline');
  if (!client || !timeline) return; // the chat screen is not showing
  const rooms = client
    .getRooms()
    .filter((r) =>
      [KnownMembership.Join, KnownMembership.Invite].includes(r.getMyMembership() as KnownMembership),
    )
    .sort((a, b) => b.getLastActiveTimestamp() - a.getLastActiveTimestamp());
  if (!rooms.some((r) => r.roomId === selectedRoomId)) selectedRoomId = rooms[0]?.roomId;
  const room = rooms.find((r) => r.roomId === selectedRoomId);

  $('.rooms').replaceChildren(...rooms.map((r) => roomItem(r)));
  $('.room-header h2').textContent = room?.name ?? 'No room yet: create one on the left';
  $('.composer').hidden = room?.getMyMembership() !== KnownMembership.Join;
  renderTimeline(timeline, room, jumpToBottom);
  renderMembers(room);
}

function roomItem(room: Room): HTMLElement {
  const invited = room.getMyMembership() === KnownMembership.Invite;
  const join = async () => {
    try {
      await client?.joinRoom(room.roomId);
      selectRoom(room.roomId);
    } catch (err) {
      toast(`Could not join: ${errorText(err)}`);
    }
  };
  const decline = () =>
    client?.leave(room.roomId).catch((err) => toast(`Could not decline: ${errorText(err)}`));
  return h(
    'li',
    { className: room.roomId === selectedRoomId ? 'selected' : '' },
    h('button', { className: 'room-link', onclick: () => selectRoom(room.roomId) }, room.name),
    invited &&
      h(
        'span',
        { className: 'invite' },
        h('button', { onclick: join }, 'Join'),
        h('button', { className: 'secondary', onclick: decline }, 'Decline'),
      ),
  );
}

function renderTimeline(timeline: HTMLElement, room: Room | undefined, jumpToBottom: boolean): void {
  // Keep the reader's place: follow new messages at the bottom, else hold the position.
  const fromBottom = timeline.scrollHeight - timeline.scrollTop;
  const atBottom = fromBottom - timeline.clientHeight < 40;
  const rows: HTMLElement[] = [];
  if (room) {
    const live = room.getLiveTimeline();
    const more = canLoadOlder(room);
    const older = h('button', { className: 'link', onclick: loadOlder }, 'Load older messages');
    rows.push(h('li', { className: 'notice' }, more ? older : 'This is the start of the room.'));
    let previous: MatrixEvent | undefined;
    for (const event of live.getEvents()) {
      const row = eventRow(event, previous);
      if (row) rows.push(row);
      previous = event;
    }
  }
  timeline.replaceChildren(...rows);
  timeline.scrollTop = jumpToBottom || atBottom ? timeline.scrollHeight : timeline.scrollHeight - fromBottom;
}

function eventRow(event: MatrixEvent, previous: MatrixEvent | undefined): HTMLElement | null {
  const sender = event.sender?.name ?? event.getSender() ?? '';
  if (event.getType() !== EventType.RoomMessage) {
    const notice = describeStateEvent(event, sender);
    return notice ? h('li', { className: 'notice' }, notice) : null;
  }
  const body = event.isRedacted() ? 'Message deleted' : String(event.getContent().body ?? '');
  // Messages from one sender within five minutes share one heading.
  const continued =
    previous?.getType() === EventType.RoomMessage &&
    previous.getSender() === event.getSender() &&
    event.getTs() - previous.getTs() < 5 * 60_000;
  const time = new Date(event.getTs()).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return h(
    'li',
    { className: `message${event.status ? ' pending' : ''}${continued ? ' continued' : ''}` },
    !continued && h('span', { className: `avatar hue${hue(event.getSender() ?? '')}` }, sender.charAt(0)),
    !continued && h('div', { className: 'meta' }, h('strong', {}, sender), h('time', {}, time)),
    h('div', { className: 'body' }, body),
    event.isEncrypted() && h('span', { className: 'lock', title: 'End-to-end encrypted' }, '🔒'),
  );
}

/** One of six avatar colours, the same for a user everywhere. */
function hue(userId: string): number {
  let sum = 0;
  for (const char of userId) sum = (sum * 31 + (char.codePointAt(0) ?? 0)) % 9973;
  return sum % 6;
}

function describeStateEvent(event: MatrixEvent, sender: string): string | null {
  const content = event.getContent();
  switch (event.getType()) {
    case EventType.RoomCreate:
      return `${sender} created the room`;
    case EventType.RoomName:
      return `${sender} named the room “${content.name}”`;
    case EventType.RoomMember: {
      const target = content.displayname ?? event.getStateKey();
      const before = event.getPrevContent().membership;
      if (content.membership === before) return null; // a profile change
      if (content.membership === KnownMembership.Invite) return `${sender} invited ${target}`;
      if (content.membership === KnownMembership.Join) return `${target} joined`;
      if (content.membership === KnownMembership.Leave) return `${target} left`;
      return null;
    }
    default:
      return null;
  }
}

/** Whether there is anything before the oldest event shown (the room's creation is the start). */
function canLoadOlder(room: Room): boolean {
  const live = room.getLiveTimeline();
  return (
    live.getPaginationToken(Direction.Backward) !== null &&
    live.getEvents()[0]?.getType() !== EventType.RoomCreate
  );
}

/** Scrollback: asks the homeserver for the events before the oldest one shown (`/messages`). */
async function loadOlder(): Promise<void> {
  const room = selectedRoomId ? client?.getRoom(selectedRoomId) : null;
  if (!client || !room || paginating) return;
  if (!canLoadOlder(room)) return;
  paginating = true;
  try {
    await client.scrollback(room, 30);
  } catch (err) {
    toast(`Could not load older messages: ${errorText(err)}`);
  } finally {
    paginating = false;
    scheduleRender();
  }
}

function renderMembers(room: Room | undefined): void {
  const panel = $('.members');
  if (!room) panel.hidden = true;
  if (panel.hidden || !room) return;
  const members = room
    .getMembers()
    .filter((m) => m.membership === KnownMembership.Join || m.membership === KnownMembership.Invite)
    .sort((a, b) => a.name.localeCompare(b.name));
  $('.members h3').textContent = `Members (${members.length})`;
  $('.members ul').replaceChildren(
    ...members.map((m) =>
      h(
        'li',
        {},
        h('strong', {}, m.name),
        h('small', {}, m.userId),
        m.membership === KnownMembership.Invite && h('em', {}, 'invited'),
      ),
    ),
  );
}

// ---------------------------------------------------------------- peers (P2P mode)

const PEER_STATES: Record<string, string> = {
  connecting: 'connecting…',
  relayed: 'relayed',
  disconnected: 'disconnected',
};

/** The other homeservers this one's libp2p node is connected to, and how. */
function renderPeers(status: P2pStatus | null): void {
  const section = app.querySelector<HTMLElement>('.peers');
  if (!section || !handle.p2p) return;
  section.hidden = false;
  const peers = (status?.peers ?? []).filter((p) => !p.relay && p.serverName);
  $('.peers ul').replaceChildren(
    ...(peers.length === 0
      ? [h('li', { className: 'empty' }, 'None yet: invite @name:<their server name>')]
      : peers.map((p) =>
          h(
            'li',
            { title: p.serverName ?? p.peerId },
            h('code', {}, p.serverName ?? p.peerId),
            h(
              'span',
              { className: `state ${p.state}` },
              p.state === 'direct'
                ? `direct (${p.via === 'webrtc' ? 'WebRTC' : p.via})`
                : (PEER_STATES[p.state] ?? p.state),
            ),
          ),
        )),
  );
  const relay = status?.peers.find((p) => p.relay && p.state !== 'disconnected');
  $('.peers .relay').textContent = status?.error
    ? `The P2P node failed: ${status.error}`
    : !status
      ? 'Starting the P2P node…'
      : relay
        ? `Relay connected${handle.p2p.leading ? '' : ' (through another tab)'}`
        : 'Relay not connected';
}

// ---------------------------------------------------------------- server name and backup

async function copyServerName(): Promise<void> {
  try {
    await navigator.clipboard.writeText(handle.serverName);
    toast('Server name copied');
  } catch {
    // The clipboard can be refused (e.g. an unfocused page): select the name for a manual copy.
    getSelection()?.selectAllChildren($('#server-name'));
  }
}

/**
 * The owner's admin panel: the accounts and rooms of the homeserver in this browser, the
 * storage it uses (`navigator.storage.estimate()`), and deactivating an account. Whoever runs
 * the page owns the homeserver: these calls go to it directly, not through Matrix.
 */
async function openAdminPanel(me: string): Promise<void> {
  const panel = $<HTMLDialogElement>('.admin-panel');
  const render = async () => {
    const [users, rooms, estimate] = await Promise.all([
      handle.control.listUsers(),
      handle.control.listRooms(),
      navigator.storage?.estimate?.().catch(() => undefined) ?? Promise.resolve(undefined),
    ]);
    const mib = (n: number | undefined) => (n === undefined ? '?' : `${(n / 1024 / 1024).toFixed(1)} MiB`);
    $('.admin-storage').textContent = estimate
      ? `Storage used: ${mib(estimate.usage)} of ${mib(estimate.quota)} available to this site.`
      : 'Storage use: not reported by this browser.';
    $('.admin-users').replaceChildren(
      ...users.map((u) => {
        const button = h('button', { type: 'button', textContent: 'Deactivate' });
        button.disabled = u.deactivated || u.userId === me;
        button.onclick = async () => {
          if (!confirm(`Deactivate ${u.userId}? It leaves its rooms and cannot sign in again.`)) return;
          try {
            await handle.control.deactivateUser(u.userId);
            await render();
          } catch (err) {
            toast(`Deactivation failed: ${errorText(err)}`);
          }
        };
        const flags = [u.admin && 'admin', u.isGuest && 'guest', u.deactivated && 'deactivated'].filter(
          Boolean,
        );
        return h(
          'li',
          { className: 'admin-user' },
          `${u.userId}${flags.length ? ` (${flags.join(', ')})` : ''} `,
          button,
        );
      }),
    );
    $('.admin-rooms').replaceChildren(
      ...rooms.map((r) =>
        h('li', { className: 'admin-room' }, `${r.name ?? r.alias ?? r.roomId} — ${r.joinedMembers} joined`),
      ),
    );
  };
  try {
    await render();
    panel.showModal();
  } catch (err) {
    toast(`Admin panel: ${errorText(err)}`);
  }
}

async function exportBackup(): Promise<void> {
  try {
    const blob = await handle.control.exportBackup();
    const link = h('a', { href: URL.createObjectURL(blob), download: `hearth-${handle.serverName}.backup` });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  } catch (err) {
    toast(`Export failed: ${errorText(err)}`);
  }
}

async function importBackup(event: Event): Promise<void> {
  const picker = event.target as HTMLInputElement;
  const file = picker.files?.[0];
  picker.value = '';
  if (!file || !confirm('Replace everything on this homeserver with this backup?')) return;
  try {
    client?.stopClient();
    await handle.control.importBackup(file);
    tabs.postMessage('reload');
    location.reload();
  } catch (err) {
    toast(`Import failed: ${errorText(err)}`);
    void client?.startClient({ initialSyncLimit: 30 });
  }
}
