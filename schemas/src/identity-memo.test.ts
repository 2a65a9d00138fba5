import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { EventCodec, isFrozenIdentity } from './codec.js';
import type { Command, Identity } from './events.js';
import { IdentityMemo } from './identity-memo.js';
import { plainReader } from './plain-reader.js';
import { currentSchemas } from './registry.js';
import { SAMPLES } from './samples.js';

/** A CI token's identity: ~25 claims, as the proxies see them. */
function ciIdentity(subject: string, extra: Record<string, string> = {}): Identity {
  const claims: Record<string, string> = { iss: 'https://ci.example', sub: subject, aud: 'agate', ...extra };
  for (let i = 0; i < 22; i++) claims[`claim_${i}`] = `value ${i} of ${subject}`;
  return { issuer: 'https://ci.example', subject, claims };
}

function command(session: string, identity: Identity, i = 1): Command {
  return { ...SAMPLES.Command, event_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, session_id: session, sequence: i, identity };
}

const shared = suite('decoded identity: one per session');
shared("a session's events share one frozen identity, equal to what was sent", () => {
  const codec = new EventCodec();
  const id = ciIdentity('repo:acme/app');
  const a = codec.decode(codec.encode(command('s1', id, 1))) as Command;
  const b = codec.decode(codec.encode(command('s1', id, 2))) as Command;
  const opened = codec.decode(codec.encode({ ...SAMPLES.SessionOpened, session_id: 's1', identity: id }));
  assert.equal(a.identity, id);
  assert.ok(a.identity === b.identity, 'the second Command reuses the first one\'s identity');
  assert.ok((opened as { identity: Identity }).identity === a.identity, 'SessionOpened and Command share it');
  // Frozen with its claims: the ledger's JSON cache and the codec's encoding cache keep it.
  assert.ok(isFrozenIdentity(a.identity));
  assert.is(b.sequence, 2);
});
shared('an identity that changes within a session is decoded anew, every time it changes', () => {
  const codec = new EventCodec();
  const first = ciIdentity('repo:acme/app', { ref: 'refs/heads/main' });
  // Same length, one byte apart: only the bytes tell them apart.
  const second = ciIdentity('repo:acme/app', { ref: 'refs/heads/mail' });
  const seen = [first, second, first, second].map((id, i) => (codec.decode(codec.encode(command('s1', id, i))) as Command).identity);
  assert.equal(seen, [first, second, first, second]);
  assert.is(seen[1]!.claims.ref, 'refs/heads/mail');
});
shared('sessions with one id from two proxies, or other sessions, get their own identity', () => {
  const codec = new EventCodec();
  const alice = ciIdentity('alice');
  const bob = ciIdentity('bob');
  assert.equal((codec.decode(codec.encode(command('s1', alice))) as Command).identity, alice);
  assert.equal((codec.decode(codec.encode(command('s2', bob))) as Command).identity, bob);
  assert.equal((codec.decode(codec.encode({ ...command('s1', bob), proxy_id: 'proxy-b' })) as Command).identity, bob);
});
shared('a body cut inside a remembered identity is refused, not completed from the memo', () => {
  const codec = new EventCodec();
  const id = ciIdentity('repo:acme/app');
  const bytes = codec.encode(command('s1', id));
  codec.decode(bytes);
  const at = bytes.indexOf(Buffer.from('value 21 of'));
  for (const n of [at, bytes.length - 1]) {
    try {
      codec.decode(bytes.subarray(0, n));
      assert.unreachable(`cut at ${n}`);
    } catch (e) {
      assert.is((e as { code: string }).code, 'EVENT_ENCODING');
    }
  }
});
shared.run();

const bounded = suite('IdentityMemo: bounded');
bounded('keeps at most its capacity of sessions, and reads a forgotten one again', () => {
  const memo = new IdentityMemo(2);
  const type = currentSchemas().get('Command')!.type;
  const read = plainReader(type, 'Command', memo);
  const codec = new EventCodec();
  const body = (s: string) => codec.encode(command(s, ciIdentity(s))).subarray(10);
  const first = (read(body('s1')) as Command).identity;
  read(body('s2'));
  read(body('s3'));
  assert.is(memo.size, 2);
  const again = (read(body('s1')) as Command).identity;
  assert.equal(again, first);
  assert.ok(again !== first, 's1 was dropped and decoded anew');
});
bounded.run();
