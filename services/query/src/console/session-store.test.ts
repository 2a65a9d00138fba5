import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { csrfMatches, SessionStore } from './session-store.js';
import { parseCookies, serializeCookie } from './cookies.js';

const identity = { issuer: 'https://idp.example', subject: 'alice', claims: {} };
const flow = { kind: 'oidc' as const, oidc: { state: 's', nonce: 'n', codeVerifier: 'v' } };

const sessions = suite('console session store');

sessions('a session is found by its id until it expires, then never again', () => {
  let now = 1000;
  const store = new SessionStore(60_000, () => now);
  const s = store.create(identity, new Set(['approver']));
  assert.is(store.get(s.id), s);
  assert.is(store.get(undefined), undefined);
  assert.is(store.get('guess'), undefined);
  now += 60_000;
  assert.is(store.get(s.id), undefined);
  now -= 1;
  assert.is(store.get(s.id), undefined, 'an expired session was removed, not just hidden');
});

sessions('ids and CSRF tokens are long, random and distinct', () => {
  const store = new SessionStore(60_000);
  const a = store.create(identity, new Set());
  const b = store.create(identity, new Set());
  assert.ok(a.id.length >= 43 && a.csrf.length >= 43);
  assert.is.not(a.id, b.id);
  assert.is.not(a.id, a.csrf);
});

sessions('a sign-in flow is good for one callback and for ten minutes', () => {
  let now = 0;
  const store = new SessionStore(60_000, () => now);
  const id = store.startFlow(flow);
  assert.equal(store.takeFlow(id), flow);
  assert.is(store.takeFlow(id), undefined, 'replayed callback');
  const late = store.startFlow(flow);
  now += 10 * 60_000;
  assert.is(store.takeFlow(late), undefined);
});

sessions('an IdP logout ends exactly the sessions it names', () => {
  const store = new SessionStore(60_000);
  const who = (sub: string) => ({ issuer: 'https://idp', subject: sub, claims: {} });
  const a1 = store.create(who('alice'), new Set(), { nameID: 'alice', sessionIndex: 'i1' });
  const a2 = store.create(who('alice'), new Set(), { nameID: 'alice', sessionIndex: 'i2' });
  const b = store.create(who('bob'), new Set(), { nameID: 'bob', sessionIndex: 'i1' });
  assert.is(store.deleteWhere((s) => s.saml?.nameID === 'alice' && s.saml.sessionIndex === 'i1'), 1);
  assert.is(store.get(a1.id), undefined);
  assert.ok(store.get(a2.id));
  assert.ok(store.get(b.id));
  assert.is(store.deleteWhere((s) => s.saml?.nameID === 'alice'), 1);
  assert.is(store.get(a2.id), undefined);
  assert.ok(store.get(b.id));
});

sessions('a SAML ticket is good for one use and for a minute', () => {
  let now = 0;
  const store = new SessionStore(60_000, () => now);
  const ticket = { identity: { issuer: 'https://idp', subject: 's', claims: {} }, subject: { nameID: 's' }, inResponseTo: '_r1' };
  const id = store.putTicket(ticket);
  assert.equal(store.takeTicket(id), ticket);
  assert.is(store.takeTicket(id), undefined, 'replayed ticket');
  assert.is(store.takeTicket(null), undefined);
  const late = store.putTicket(ticket);
  now += 60_000;
  assert.is(store.takeTicket(late), undefined);
});

sessions('signing out deletes the session', () => {
  const store = new SessionStore(60_000);
  const s = store.create(identity, new Set());
  store.delete(s.id);
  assert.is(store.get(s.id), undefined);
});

sessions('CSRF tokens compare exactly', () => {
  const s = new SessionStore(60_000).create(identity, new Set());
  assert.ok(csrfMatches(s, s.csrf));
  assert.not.ok(csrfMatches(s, undefined));
  assert.not.ok(csrfMatches(s, ''));
  assert.not.ok(csrfMatches(s, s.csrf.slice(1)));
  assert.not.ok(csrfMatches(s, s.csrf.slice(0, -1) + (s.csrf.endsWith('A') ? 'B' : 'A')));
});

sessions.run();

const cookies = suite('console cookies');

cookies('parse takes the first of duplicate names and skips junk', () => {
  const m = parseCookies('a=1; junk; agate_console=xyz; a=2; =v');
  assert.is(m.get('a'), '1');
  assert.is(m.get('agate_console'), 'xyz');
  assert.is(m.size, 2);
  assert.is(parseCookies(undefined).size, 0);
});

cookies('serialize is HttpOnly, scoped to /ui/, Secure only when asked', () => {
  assert.is(serializeCookie('c', 'v', { sameSite: 'Strict', secure: false, maxAge: 10 }), 'c=v; Path=/ui/; HttpOnly; SameSite=Strict; Max-Age=10');
  assert.is(serializeCookie('c', '', { sameSite: 'Lax', secure: true, maxAge: 0 }), 'c=; Path=/ui/; HttpOnly; SameSite=Lax; Max-Age=0; Secure');
});

cookies.run();
