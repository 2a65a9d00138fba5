// Lexer smuggling: text Agate reads as one harmless statement must never reach a server that
// reads it as two. Real psql, node-postgres and a raw protocol client against a real PostgreSQL
// 15 through `agate start`; each case checks in PostgreSQL itself that the hidden DROP did not
// run, and that Agate recorded the attempt.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serialize } from 'pg-protocol';
import type { Command, Response, SessionClosed, SessionOpened, Verdict } from '../../schemas/src/events.js';
import { run } from '../harness/proc.js';
import { startAgate, waitForEvents, type AgateFixture } from './agate-fixture.js';
import { RawClient } from './raw-client.js';

const PSQL = '/usr/bin/psql';
const SMUGGLE = "SELECT 'a\\' , '; DROP TABLE v; --'";

const lexing = suite<{ agate: AgateFixture }>('lexing settings are pinned: no statement hides in a string');

lexing.before(async (ctx) => {
  // The fixture's policy, and reads calling a function made in the database (stored code: the
  // functions below must run for the server to report the settings they change).
  ctx.agate = await startAgate({
    policyYaml: `policy:
  default: allow
  rules:
    - id: no-destructive-ddl
      action: deny
      match: { sql: { statements: [DropStmt, TruncateStmt] } }
    - id: stored-reads
      action: allow
      match: { sql: { effects: [read, stored] } }
`,
  });
  // Owned by Agate's upstream role, so a DROP that got through would succeed.
  await ctx.agate.pg.psql(`CREATE TABLE public.v (id int); ALTER TABLE public.v OWNER TO ${ctx.agate.pg.users.scram.user};
CREATE FUNCTION public.strings_off() RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN set_config('standard_conforming_strings', 'off', false); END $$;
CREATE FUNCTION public.encoding_sjis() RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN set_config('client_encoding', 'SJIS', false); END $$;`);
});
lexing.after(async (ctx) => {
  await ctx.agate?.cleanup();
});

const tableExists = async (agate: AgateFixture) => (await agate.pg.psql("SELECT to_regclass('public.v') IS NOT NULL")) === 't';

async function psql(agate: AgateFixture, args: string[], env: Record<string, string> = {}) {
  return run(PSQL, ['-X', '-A', '-t', '-w', ...args], { env: { ...(await agate.libpqEnv()), ...env }, timeoutMs: 30_000 });
}

const commandsLike = (agate: AgateFixture, re: RegExp) => agate.events().filter((e): e is Command => e.type === 'Command' && re.test(e.text));
const verdictOf = (agate: AgateFixture, c: Command) => agate.events().find((e): e is Verdict => e.type === 'Verdict' && e.command_id === c.event_id);
const closedOf = (agate: AgateFixture, sessionId: string) => agate.events().find((e): e is SessionClosed => e.type === 'SessionClosed' && e.session_id === sessionId);

lexing('PGOPTIONS=-c standard_conforming_strings=off: the session is refused and the attempt recorded', async ({ agate }) => {
  const r = await psql(agate, ['-c', SMUGGLE], { PGOPTIONS: '-c standard_conforming_strings=off' });
  assert.is.not(r.code, 0);
  assert.match(r.stderr, /standard_conforming_strings/);
  assert.ok(await tableExists(agate), 'the DROP did not run');
  const events = await waitForEvents(agate, (ev) => ev.some((e) => e.type === 'Command' && e.text.includes('"standard_conforming_strings"')));
  const set = commandsLike(agate, /^SET "standard_conforming_strings" TO 'off'$/)[0]!;
  assert.is(set.attributes.message, 'StartupOption');
  await waitForEvents(agate, () => verdictOf(agate, set) !== undefined && closedOf(agate, set.session_id) !== undefined);
  assert.is(verdictOf(agate, set)!.decision, 'deny');
  assert.is(verdictOf(agate, set)!.rule_id, 'agate.lexing-setting');
  const opened = events.find((e): e is SessionOpened => e.type === 'SessionOpened' && e.session_id === set.session_id)!;
  assert.is(opened.attributes.options, '-c standard_conforming_strings=off');
  assert.match(closedOf(agate, set.session_id)!.reason, /startup option standard_conforming_strings refused/);
  assert.is(commandsLike(agate, /DROP TABLE v/).length, 0, 'the smuggling SELECT never got as far as a decision');
});

lexing('an allowed startup option is decided, recorded and applied upstream', async ({ agate }) => {
  const r = await psql(agate, ['-c', 'SHOW geqo; SHOW standard_conforming_strings'], { PGOPTIONS: '-c geqo=off' });
  assert.is(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n'), ['off', 'on']);
  const set = (await waitForEvents(agate, () => commandsLike(agate, /^SET "geqo" TO 'off'$/).length > 0), commandsLike(agate, /^SET "geqo"/)[0]!);
  await waitForEvents(agate, (ev) => ev.some((e) => e.type === 'Response' && e.command_id === set.event_id));
  const resp = agate.events().find((e): e is Response => e.type === 'Response' && e.command_id === set.event_id)!;
  assert.is(resp.status, 'ok');
  assert.is(verdictOf(agate, set)!.decision, 'allow');
});

lexing('SET standard_conforming_strings = off is refused; the smuggle after it is one harmless SELECT', async ({ agate }) => {
  const r = await psql(agate, ['-c', 'SET standard_conforming_strings = off', '-c', SMUGGLE]);
  assert.match(r.stderr, /Agate pins how the server reads SQL/);
  assert.equal(r.stdout.trim(), "a\\|; DROP TABLE v; --");
  assert.ok(await tableExists(agate));
  for (const sql of ["SELECT set_config('standard_conforming_strings', 'off', false)", "SET client_encoding TO 'SJIS'", 'ALTER ROLE CURRENT_USER SET standard_conforming_strings = off']) {
    const x = await psql(agate, ['-c', sql]);
    assert.is.not(x.code, 0, sql);
    assert.match(x.stderr, /42501|Agate pins/, sql);
  }
  assert.is(await agate.pg.psql(`SELECT count(*) FROM pg_db_role_setting`), '0', 'no role setting was stored');
});

lexing('client_encoding SJIS at startup is refused: the multibyte quote hide never reaches the server', async ({ agate }) => {
  // 0x83 0x5C is one SJIS character; read as UTF-8 it is an invalid byte and a backslash that
  // escapes the quote after it, so Agate would see one string where the server sees a DROP.
  const file = join(agate.dir, 'sjis.sql');
  writeFileSync(file, Buffer.concat([Buffer.from("SELECT E'"), Buffer.from([0x83, 0x5c]), Buffer.from("' , '; DROP TABLE v; --';\n")]));
  const r = await psql(agate, ['-f', file], { PGCLIENTENCODING: 'SJIS' });
  assert.is.not(r.code, 0);
  assert.match(r.stderr, /client_encoding = 'SJIS'/);
  assert.ok(await tableExists(agate));
  await waitForEvents(agate, (ev) => ev.some((e) => e.type === 'SessionClosed' && /startup refused: client_encoding = 'SJIS'/.test(e.reason)));
});

lexing('a function that changes the settings ends the session at the server’s report; the smuggle behind it never runs', async ({ agate }) => {
  const cases = [
    ['SELECT public.strings_off()', SMUGGLE],
    ['SELECT public.encoding_sjis()', "SELECT E'\u00e9\\' , '; DROP TABLE v; --'"],
    // A rule on pg_settings calls set_config: the text names no setting Agate could check.
    ["UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'", SMUGGLE],
  ];
  for (const [first, second] of cases) {
    const fn = first!;
    const c = await RawClient.login(agate.host, agate.port, await agate.token());
    // Both queries in one write: the second is in Agate's hands before the first's report arrives.
    c.send(serialize.query(first!), serialize.query(second!));
    const replies = await c.until((r) => r.name === 'error' && (r as { severity?: string }).severity === 'FATAL');
    const fatal = replies.find((r) => r.name === 'error' && (r as { severity?: string }).severity === 'FATAL')!;
    assert.is(fatal.code, '0A000', fn);
    assert.match(fatal.message!, /Agate closed the session: the server now reads SQL with/);
    assert.is(replies.filter((r) => r.name === 'commandComplete').length, 1, 'only the first query ran');
    assert.ok(await tableExists(agate), fn);
    c.close();
  }
  assert.is(commandsLike(agate, /DROP TABLE v/).length, 1, 'the text after the report was never decided (the one is the harmless SELECT of the SET test)');
  await waitForEvents(agate, (ev) => ev.filter((e) => e.type === 'SessionClosed' && e.reason.startsWith('lexing setting changed')).length === 3);
});

lexing('in an extended-protocol batch, a backslash text after a statement that ran, before Sync, is refused', async ({ agate }) => {
  const c = await RawClient.login(agate.host, agate.port, await agate.token());
  try {
    c.send(
      serialize.parse({ text: 'SELECT public.strings_off()' }), serialize.bind({}), serialize.execute({}),
      serialize.parse({ text: SMUGGLE }), serialize.bind({}), serialize.execute({}),
      serialize.sync(),
    );
    const replies = await c.until((r) => r.name === 'error');
    const error = replies.find((r) => r.name === 'error')!;
    assert.is(error.code, '0A000');
    assert.match(error.message!, /no Sync in between/);
    assert.ok(await tableExists(agate));
  } finally {
    c.close();
  }
  const parsed = () => commandsLike(agate, /DROP TABLE v/).filter((c) => c.attributes.message === 'Parse');
  const refused = (await waitForEvents(agate, () => parsed().length > 0), parsed()[0]!);
  await waitForEvents(agate, (ev) => ev.some((e) => e.type === 'Response' && e.command_id === refused.event_id && e.status === 'refused'));
});

lexing('ordinary backslash and non-ASCII text still runs, pipelined or not', async ({ agate }) => {
  const c = await agate.client();
  try {
    const r = await c.query("SELECT E'a\\\\b' AS x, 'é✓' AS y, 'c:\\dir' AS z");
    assert.equal(r.rows, [{ x: 'a\\b', y: 'é✓', z: 'c:\\dir' }]);
    const [a, b] = await Promise.all([c.query("SELECT 'ü' AS u"), c.query("SELECT 'x\\' AS w")]);
    assert.equal([a.rows[0].u, b.rows[0].w], ['ü', 'x\\']);
  } finally {
    await c.end();
  }
});

lexing.run();
