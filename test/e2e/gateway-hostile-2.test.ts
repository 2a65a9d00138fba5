// A hostile client of the gateway's own surface, tenth pass: a session that outlives its token.
// Real `agate start`, a real issuer minting a token that lives seconds, node-postgres through
// the PostgreSQL proxy, and the target's own table as the oracle.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectAgent } from '../harness/agent-client.js';
import { startAgate, waitForEvents, type AgateFixture } from './agate-fixture.js';
import type { SessionClosed, SessionOpened } from '../../schemas/src/events.js';

const test = suite<{ a: AgateFixture }>('e2e/gateway hostile client: sessions and token expiry');

test.before(async (ctx) => {
  ctx.a = await startAgate();
  await ctx.a.pg.psql('CREATE TABLE after_expiry (n int); GRANT ALL ON after_expiry TO PUBLIC', undefined, 'appdb');
});
test.after((ctx) => ctx.a?.cleanup());

test('a PostgreSQL session ends when its token expires: later statements never reach the target', async ({ a }) => {
  const token = await a.oidc.mint(a.oidc.githubActionsClaims({ sub: 'short-lived' }), { expiresIn: 4 });
  const client = await connectAgent({ host: a.host, port: a.port, token });
  await client.query('INSERT INTO after_expiry VALUES (1)');
  await sleep(5_000);
  // Before: the session went on as long as the client kept it, token or not, and this row landed.
  const late = await client.query('INSERT INTO after_expiry VALUES (2)').then(() => 'ran', (err: Error & { code?: string }) => err.code ?? err.message);
  await client.end().catch(() => undefined);
  assert.is.not(late, 'ran');
  assert.is(await a.pg.psql('SELECT string_agg(n::text, \',\' ORDER BY n) FROM after_expiry', undefined, 'appdb'), '1');
  const events = await waitForEvents(a, (ev) => ev.some((e) => e.type === 'SessionOpened' && e.identity.subject === 'short-lived'));
  const opened = events.find((e): e is SessionOpened => e.type === 'SessionOpened' && e.identity.subject === 'short-lived')!;
  const closed = (await waitForEvents(a, (ev) => ev.some((e) => e.type === 'SessionClosed' && e.session_id === opened.session_id)))
    .find((e): e is SessionClosed => e.type === 'SessionClosed' && e.session_id === opened.session_id)!;
  assert.match(closed.reason, /token expired/);
  assert.is(closed.commands, 1);
});

test.run();
