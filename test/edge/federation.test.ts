/**
 * Two hosts of different kinds federating over HTTPS on loopback: `hearth serve` on Node and
 * the Deno host, each serving HTTPS with a certificate from a CA made at test time and
 * trusting that CA for outgoing federation (Node through node:https, Deno through its fetch
 * with `Deno.createHttpClient`). matrix-js-sdk users on each: a room on Node, the Deno user
 * invited and joining over federation, messages both ways.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventType, type MatrixClient, type MatrixEvent, type Room } from 'matrix-js-sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { createNodeHttpsTransport } from '../../src/transport/https/node.ts';
import { register, startClient, until } from '../e2e/js-sdk-scenario.ts';
import { freePort, type Serve, startServe, stopServe, writeTestTls } from '../e2e/serve.ts';
import { denoHost, type HostProcess, stopHostProcess } from './processes.ts';

const root = mkdtempSync(join(tmpdir(), 'hearth-edge-fed-'));
const stops: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
  rmSync(root, { recursive: true, force: true });
});

const bodies = (room: Room | null): string[] =>
  (room?.getLiveTimeline().getEvents() ?? [])
    .filter((e: MatrixEvent) => e.getType() === EventType.RoomMessage)
    .map((e: MatrixEvent) => e.getContent().body as string);

describe('a Deno host and a Node host federating over HTTPS', () => {
  it('a Deno user joins a room on Node over federation and both chat', async () => {
    const { ca, files } = writeTestTls(root);

    const nodePort = await freePort();
    const nodeName = `localhost:${nodePort}`;
    const node: Serve = await startServe(join(root, 'node'), nodeName, [
      '--port',
      String(nodePort),
      '--tls-cert',
      files.cert,
      '--tls-key',
      files.key,
      '--federation-ca',
      files.ca,
    ]);
    stops.push(() => stopServe(node.child));
    const denoPort = await freePort();
    const denoName = `localhost:${denoPort}`;
    const deno: HostProcess = await denoHost({
      HEARTH_SERVER_NAME: denoName,
      HEARTH_PORT: String(denoPort),
      HEARTH_DATA: join(root, 'deno'),
      HEARTH_REGISTRATION: 'open',
      HEARTH_TLS_CERT: files.cert,
      HEARTH_TLS_KEY: files.key,
      HEARTH_FEDERATION_CA: files.ca,
    });
    stops.push(() => stopHostProcess(deno.child));
    expect(deno.url).toBe(`https://127.0.0.1:${denoPort}`);

    // The test's own client side trusts the CA too.
    const https = createNodeHttpsTransport({ ca: ca.cert });
    stops.push(async () => https.close());
    const fetchFn = ((input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      return https.send(new URL(request.url).host, request);
    }) as typeof fetch;
    const onNode = { baseUrl: `https://${nodeName}`, fetchFn };
    const onDeno = { baseUrl: `https://${denoName}`, fetchFn };
    const clients: MatrixClient[] = [];
    stops.push(async () => {
      for (const c of clients) c.stopClient();
    });
    const alice = await startClient(onNode, await register(onNode, 'alice'));
    clients.push(alice);
    const bob = await startClient(onDeno, await register(onDeno, 'bob'));
    clients.push(bob);
    const bobId = bob.getUserId() as string;
    expect(bobId).toBe(`@bob:${denoName}`);

    const { room_id: roomId } = await alice.createRoom({
      name: 'Node and Deno',
      preset: 'private_chat' as never,
      invite: [bobId],
    });
    await until(
      clients,
      () => bob.getRoom(roomId)?.getMyMembership() === 'invite',
      'Bob (Deno) to see the invite',
      30_000,
    );
    await bob.joinRoom(roomId);
    await until(
      clients,
      () => alice.getRoom(roomId)?.getMember(bobId)?.membership === 'join',
      'Alice (Node) to see Bob join over federation',
      30_000,
    );
    await alice.sendTextMessage(roomId, 'hello from Node');
    await until(
      clients,
      () => bodies(bob.getRoom(roomId)).includes('hello from Node'),
      'Bob to get it',
      30_000,
    );
    await bob.sendTextMessage(roomId, 'hello from Deno');
    await until(
      clients,
      () => bodies(alice.getRoom(roomId)).includes('hello from Deno'),
      'Alice to get it',
      30_000,
    );
    expect(bodies(alice.getRoom(roomId))).toEqual(['hello from Node', 'hello from Deno']);
  }, 180_000);
});
