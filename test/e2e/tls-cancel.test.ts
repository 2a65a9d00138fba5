// Startup-phase requests: TLS termination with the configured certificate (psql with
// sslmode=require and verify-full), GSSENCRequest declined, and CancelRequest routed to the
// upstream backend behind Agate's own key.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serialize } from 'pg-protocol';
import { cancelRequestPacket } from '../../services/ingress-proxy/src/pg/cancel.js';
import { DEFAULT_PG_BIN } from '../harness/postgres.js';
import { describeFailure, run } from '../harness/proc.js';
import { makeTestCa, type TestCa } from '../harness/test-ca.js';
import { startAgate, waitForEvents, type AgateFixture } from './agate-fixture.js';
import type { AgateEvent, Command, Response } from '../../schemas/src/events.js';
import { RawClient } from './raw-client.js';

const startup = suite<{ agate: AgateFixture; certDir: string; ca: TestCa }>('startup requests: TLS, GSSENC, cancel');

startup.before(async (ctx) => {
  ctx.certDir = await mkdtemp(join(tmpdir(), 'agate-tls-'));
  ctx.ca = await makeTestCa(ctx.certDir);
  ctx.agate = await startAgate({ proxyYaml: `tls: { cert: ${ctx.ca.server.cert}, key: ${ctx.ca.server.key} }` });
});
startup.after(async (ctx) => {
  await ctx.agate?.cleanup();
  if (ctx.certDir) await rm(ctx.certDir, { recursive: true, force: true });
});

startup('psql connects over TLS with sslmode=require and verify-full', async ({ agate, ca }) => {
  for (const mode of ['require', 'verify-full']) {
    const env = { ...(await agate.libpqEnv()), PGSSLMODE: mode, PGSSLROOTCERT: ca.ca };
    const args = ['-X', '-A', '-t', '-c', 'SELECT name FROM items WHERE id = 1', '-c', '\\conninfo'];
    const r = await run(join(DEFAULT_PG_BIN, 'psql'), args, { env, timeoutMs: 30_000 });
    assert.is(r.code, 0, describeFailure('psql', args, r));
    assert.match(r.stdout, /alpha/);
    assert.match(r.stdout, /SSL connection \(protocol: TLSv1\.[23]/);
  }
});

startup('GSSENCRequest is declined with N and the client goes on in clear', async ({ agate }) => {
  const socket = connect({ host: agate.host, port: agate.port });
  socket.on('error', () => {});
  await new Promise((r) => socket.once('connect', r));
  const gss = Buffer.alloc(8);
  gss.writeInt32BE(8, 0);
  gss.writeInt32BE(80877104, 4);
  const answer = new Promise<Buffer>((r) => socket.once('data', r));
  socket.write(gss);
  assert.is((await answer).toString(), 'N');
  const next = new Promise<Buffer>((r) => socket.once('data', r));
  socket.write(serialize.startup({ user: 'agent', database: 'appdb' }));
  assert.is((await next)[0], 0x52); // R: an authentication request
  socket.destroy();
});

startup('inside TLS a GSSENCRequest or a second SSLRequest ends the connection (08P01), as the server would', async ({ agate, ca }) => {
  const gss = Buffer.alloc(8);
  gss.writeInt32BE(8, 0);
  gss.writeInt32BE(80877104, 4);
  for (const [what, request] of [['GSSENCRequest', gss], ['SSLRequest', serialize.requestSsl()]] as const) {
    const raw = connect({ host: agate.host, port: agate.port });
    raw.on('error', () => {});
    await new Promise((r) => raw.once('connect', r));
    const answer = new Promise<Buffer>((r) => raw.once('data', r));
    raw.write(serialize.requestSsl());
    assert.is((await answer).toString(), 'S');
    const secure = tlsConnect({ socket: raw, ca: readFileSync(ca.ca), servername: 'localhost' });
    secure.on('error', () => {});
    await new Promise((r) => secure.once('secureConnect', r));
    const chunks: Buffer[] = [];
    secure.on('data', (c) => chunks.push(c));
    const closed = new Promise((r) => secure.once('close', r));
    // Alone, as a client waiting for the one-byte answer would send it.
    secure.write(request);
    await Promise.race([closed, new Promise((r) => setTimeout(r, 5_000))]);
    secure.destroy();
    const reply = Buffer.concat(chunks);
    assert.is(reply[0], 0x45, `${what}: ${reply.toString('latin1')}`); // E: no 'N', no authentication request
    assert.ok(reply.includes(Buffer.from('C08P01\0')), `${what}: ${reply.toString('latin1')}`);
  }
});

startup('a CancelRequest with Agate\'s key cancels the running statement upstream', async ({ agate }) => {
  const c = await RawClient.login(agate.host, agate.port, await agate.token());
  try {
    assert.ok(c.key !== undefined);
    c.send(serialize.query('SELECT pg_sleep(30)'));
    await new Promise((r) => setTimeout(r, 500));
    const started = Date.now();
    const wrong = connect({ host: agate.host, port: agate.port }, () => wrong.end(cancelRequestPacket({ processId: c.key!.processId, secretKey: c.key!.secretKey ^ 1 })));
    wrong.on('error', () => {});
    const cancel = connect({ host: agate.host, port: agate.port }, () => cancel.end(cancelRequestPacket(c.key!)));
    cancel.on('error', () => {});
    const replies = await c.readyCount(1);
    const err = replies.find((r) => r.name === 'error');
    assert.is(err?.code, '57014'); // query_canceled
    assert.ok(Date.now() - started < 10_000);
  } finally {
    c.close();
  }
  // The cancel is part of the record of the session it targets, decided and answered.
  // Both answers: the cancel's, and the cancelled statement's (it may be recorded after the cancel's).
  const answered = (ev: readonly AgateEvent[], is: (c: Command) => boolean) => ev.some((e) => e.type === 'Command' && is(e) && ev.some((r) => r.type === 'Response' && r.command_id === e.event_id));
  const events = await waitForEvents(agate, (ev) => answered(ev, (c) => c.attributes.message === 'CancelRequest') && answered(ev, (c) => c.text === 'SELECT pg_sleep(30)'));
  const sleep = events.find((e): e is Command => e.type === 'Command' && e.text === 'SELECT pg_sleep(30)')!;
  const cancels = events.filter((e): e is Command => e.type === 'Command' && e.attributes.message === 'CancelRequest');
  assert.is(cancels.length, 1, 'the wrong key is no cancel of anyone');
  assert.is(cancels[0]!.session_id, sleep.session_id);
  assert.ok(cancels[0]!.sequence > sleep.sequence);
  assert.match(cancels[0]!.attributes.from!, /^127\.0\.0\.1:\d+$/);
  assert.ok(events.some((e) => e.type === 'Verdict' && e.command_id === cancels[0]!.event_id && e.decision === 'allow'));
  const sleepResponse = events.find((e): e is Response => e.type === 'Response' && e.command_id === sleep.event_id)!;
  assert.equal([sleepResponse.status, sleepResponse.error_code], ['error', '57014']);
});

startup.run();
