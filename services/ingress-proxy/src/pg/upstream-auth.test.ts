import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { md5Password, ScramSha256Client } from './upstream-auth.js';

const codeOf = async (fn: () => unknown): Promise<{ code?: string; message: string }> => {
  try { await fn(); } catch (e) { return e as { code?: string; message: string }; }
  throw new Error('expected a rejection');
};

const md5 = suite('md5Password');
md5('matches md5(md5(password + user) + salt) computed independently', () => {
  const salt = Buffer.from([0x9a, 0x01, 0xff, 0x20]);
  const inner = createHash('md5').update('hunter2' + 'alice').digest('hex');
  const outer = createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex');
  assert.is(md5Password('alice', 'hunter2', salt), 'md5' + outer);
  assert.is(md5Password('alice', 'hunter2', salt).length, 35);
});
md5('a salt that is not 4 bytes is a protocol error', async () => {
  assert.is((await codeOf(() => md5Password('a', 'b', Buffer.alloc(5)))).code, 'PROTOCOL_VIOLATION');
});
md5.run();

// RFC 7677 §3 test vector.
const NONCE = 'rOprNGfwEbeRWgbNEkqO';
const SERVER_FIRST = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
const CLIENT_FINAL = 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';
const SERVER_FINAL = 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=';
const rfcClient = () => new ScramSha256Client('pencil', { nonce: NONCE, username: 'user' });

const scram = suite('ScramSha256Client');
scram('reproduces the RFC 7677 exchange', async () => {
  const c = rfcClient();
  assert.is(c.mechanism, 'SCRAM-SHA-256');
  assert.is(c.clientFirst(), 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
  assert.is(await c.clientFinal(SERVER_FIRST), CLIENT_FINAL);
  c.verifyServerFinal(SERVER_FINAL);
});
scram('defaults: empty username (PostgreSQL uses the startup user) and a random 18-byte nonce', () => {
  const first = new ScramSha256Client('pw').clientFirst();
  assert.match(first, /^n,,n=,r=[A-Za-z0-9+/]{24}$/);
  assert.is.not(first, new ScramSha256Client('pw').clientFirst());
});
scram('a wrong server signature is UPSTREAM_AUTH_FAILED', async () => {
  const c = rfcClient();
  c.clientFirst();
  await c.clientFinal(SERVER_FIRST);
  const err = await codeOf(() => c.verifyServerFinal('v=' + Buffer.alloc(32, 1).toString('base64')));
  assert.is(err.code, 'UPSTREAM_AUTH_FAILED');
  assert.not.match(err.message, /pencil/);
});
scram('a server error attribute, a short signature and garbage are rejected', async () => {
  for (const final of ['e=invalid-proof', 'v=AAAA', SERVER_FINAL + ',x=1', 'x=1']) {
    const c = rfcClient();
    c.clientFirst();
    await c.clientFinal(SERVER_FIRST);
    assert.is((await codeOf(() => c.verifyServerFinal(final))).code, 'UPSTREAM_AUTH_FAILED', final);
  }
});
scram('server-first validation: nonce, salt, iterations, shape', async () => {
  const bad = [
    'r=someoneElse123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096', // does not extend our nonce
    `r=${NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`, // adds nothing to it
    `r=${NONCE}x,s=not base64!,i=4096`,
    `r=${NONCE}x,s=,i=4096`,
    `r=${NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0`,
    `r=${NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1`,
    `r=${NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096x`,
    `r=${NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=2000000`, // above the default cap
    `m=ext,r=${NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`, // mandatory extension
    `r=${NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==`,
    `r=${NONCE}x,i=4096,s=W22ZaJ0SNY7soEsUEjb6gQ==`,
  ];
  for (const serverFirst of bad) {
    const c = rfcClient();
    c.clientFirst();
    const err = await codeOf(() => c.clientFinal(serverFirst));
    assert.is(err.code, 'UPSTREAM_AUTH_FAILED', serverFirst);
    assert.not.match(err.message, /pencil/);
  }
});
scram('steps out of order, or after a failure, are refused', async () => {
  assert.is((await codeOf(() => rfcClient().clientFinal(SERVER_FIRST))).code, 'UPSTREAM_AUTH_FAILED');
  assert.is((await codeOf(() => rfcClient().verifyServerFinal(SERVER_FINAL))).code, 'UPSTREAM_AUTH_FAILED');
  const c = rfcClient();
  c.clientFirst();
  assert.is((await codeOf(() => c.clientFirst())).code, 'UPSTREAM_AUTH_FAILED');
  await codeOf(() => c.clientFinal('garbage'));
  assert.is((await codeOf(() => c.clientFinal(SERVER_FIRST))).code, 'UPSTREAM_AUTH_FAILED');
});
scram('usernames are escaped; bad injected nonces are refused', async () => {
  assert.is(new ScramSha256Client('pw', { nonce: 'abc', username: 'a=b,c' }).clientFirst(), 'n,,n=a=3Db=2Cc,r=abc');
  assert.is((await codeOf(() => new ScramSha256Client('pw', { nonce: 'a,b' }))).code, 'UPSTREAM_AUTH_FAILED');
});
scram.run();
