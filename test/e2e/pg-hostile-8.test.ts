// A hostile agent with a valid token, eighth pass (pg-hostile.test.ts … -7 have the first seven):
// code stored in the database earlier, by someone else, that the server runs when an allowed
// statement touches it — a trigger (one reaching a server program through a SECURITY DEFINER
// function, one on a table a cascading foreign key changes), a rule, a view over a refused
// table, a column default, a domain CHECK, an index expression that unlinks a large object, a
// row security policy, a function or procedure called by name, an operator, an event trigger.
// The text of each statement names none of it. Witnesses: the replies on the wire, the database
// read directly, and pgaudit's log checked against the record.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { untilQuiet } from './agate-fixture.js';
import { auditAgent, intact, send, startHostile, stopHostile, type HostileCtx } from './pg-hostile-fixture.js';

const hostile = suite<HostileCtx>('a hostile agent against the PostgreSQL proxy, eighth pass: stored code');

/** The secret column's values: no detector knows their shape. */
const TOKEN = `tok${randomBytes(10).toString('hex')}`;
/** The file a server program would create (`COPY … TO PROGRAM` in a SECURITY DEFINER trigger function). */
const PROGRAM_MARK = join(tmpdir(), `agate-h3-${randomBytes(6).toString('hex')}`);
/** A large object the agent owns, which an index expression would unlink. */
const LO = 424242;

/** Objects made by the superuser before the agent connects: none is made through Agate. */
function storedSql(owner: string): string {
  return `
CREATE TABLE public.notes (id int, body text);
CREATE TABLE public.outbox (id int, body text);
CREATE TABLE public.inbox (id int);
CREATE TABLE public.tickets (id int);
CREATE TABLE public.docs (id int);
CREATE TABLE public.gauges (id int);
CREATE TABLE public.parents (id int PRIMARY KEY);
CREATE TABLE public.kids (pid int REFERENCES public.parents ON UPDATE CASCADE);
CREATE TABLE public.audited (id int);
CREATE TABLE public.audit_trail (id int);
INSERT INTO public.docs VALUES (1);
INSERT INTO public.parents VALUES (1);
INSERT INTO public.kids VALUES (1);
SELECT lo_create(${LO});
ALTER LARGE OBJECT ${LO} OWNER TO ${owner};
-- Someone else's code, owned by the superuser, run as the superuser (SECURITY DEFINER).
CREATE FUNCTION public.wipe_ledger() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$BEGIN DELETE FROM public.ledger; RETURN NEW; END$$;
CREATE TRIGGER notes_wipe AFTER INSERT ON public.notes FOR EACH ROW EXECUTE FUNCTION public.wipe_ledger();
CREATE FUNCTION public.run_program() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$BEGIN COPY (SELECT 1) TO PROGRAM 'touch ${PROGRAM_MARK}'; RETURN NEW; END$$;
CREATE TRIGGER outbox_send AFTER INSERT ON public.outbox FOR EACH ROW EXECUTE FUNCTION public.run_program();
CREATE RULE inbox_people AS ON INSERT TO public.inbox DO ALSO UPDATE public.people SET name = 'rule';
CREATE VIEW public.vault_view AS SELECT * FROM public.vault;
GRANT SELECT ON public.vault_view TO ${owner};
CREATE FUNCTION public.stamp() RETURNS int LANGUAGE plpgsql SECURITY DEFINER AS $$BEGIN UPDATE public.people SET name = 'default'; RETURN 1; END$$;
ALTER TABLE public.tickets ADD COLUMN stamp int DEFAULT public.stamp();
CREATE FUNCTION public.check_fn(int) RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER AS $$BEGIN UPDATE public.people SET name = 'domain'; RETURN true; END$$;
CREATE DOMAIN public.checked_int AS int CHECK (public.check_fn(VALUE));
CREATE TABLE public.measures (v public.checked_int);
CREATE FUNCTION public.see(int) RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER AS $$BEGIN UPDATE public.people SET name = 'policy'; RETURN true; END$$;
ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.docs FORCE ROW LEVEL SECURITY;
CREATE POLICY docs_see ON public.docs USING (public.see(id));
-- Immutable, so it may sit in an index: a SELECT of lo_unlink is still allowed in it.
CREATE FUNCTION public.gauge_key(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$BEGIN PERFORM lo_unlink(l.oid) FROM pg_largeobject_metadata l WHERE l.oid = ${LO}; RETURN $1; END$$;
CREATE INDEX gauges_key ON public.gauges (public.gauge_key(id));
CREATE FUNCTION public.kid_moved() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$BEGIN UPDATE public.people SET name = 'cascade'; RETURN NEW; END$$;
CREATE TRIGGER kids_moved AFTER UPDATE ON public.kids FOR EACH ROW EXECUTE FUNCTION public.kid_moved();
CREATE FUNCTION public.tidy() RETURNS void LANGUAGE sql SECURITY DEFINER AS 'DELETE FROM public.ledger';
CREATE PROCEDURE public.flush() LANGUAGE plpgsql SECURITY DEFINER AS $$BEGIN DELETE FROM public.ledger; COMMIT; END$$;
CREATE FUNCTION public.zap(int) RETURNS int LANGUAGE plpgsql SECURITY DEFINER AS $$BEGIN UPDATE public.people SET name = 'operator'; RETURN $1; END$$;
CREATE OPERATOR public.### (rightarg = int, function = public.zap);
CREATE FUNCTION public.audit_row() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO public.audit_trail VALUES (NEW.id); RETURN NEW; END$$;
CREATE TRIGGER audited_trail AFTER INSERT ON public.audited FOR EACH ROW EXECUTE FUNCTION public.audit_row();
ALTER TABLE public.notes OWNER TO ${owner};
ALTER TABLE public.outbox OWNER TO ${owner};
ALTER TABLE public.inbox OWNER TO ${owner};
ALTER TABLE public.tickets OWNER TO ${owner};
ALTER TABLE public.docs OWNER TO ${owner};
ALTER TABLE public.gauges OWNER TO ${owner};
ALTER TABLE public.parents OWNER TO ${owner};
ALTER TABLE public.kids OWNER TO ${owner};
ALTER TABLE public.measures OWNER TO ${owner};
ALTER TABLE public.audited OWNER TO ${owner};
ALTER TABLE public.audit_trail OWNER TO ${owner};
`;
}

hostile.before(async (ctx) => {
  rmSync(PROGRAM_MARK, { force: true });
  await startHostile(ctx, {
    tokens: [TOKEN],
    extraRules: `    - id: vault-unread
      action: deny
      match: { claims: { masked: "no" }, sql: { tables_read: [vault] } }
    - id: audited-inserts
      action: allow
      match: { claims: { stored: "ok" }, sql: { tables_written: [audited], effects: [read, write, stored] } }
`,
    // The owner's name is only known once PostgreSQL runs: filled in below.
    moreSql: '',
  });
  await ctx.agate.pg.psql(storedSql(ctx.agate.pg.users.scram.user));
});
hostile.after(async (ctx) => {
  rmSync(PROGRAM_MARK, { force: true });
  await stopHostile(ctx);
});

/** The plain agent (claim `masked: no`, which the refusing rule of this suite matches). */
async function plain(ctx: HostileCtx): Promise<void> {
  ctx.session ??= await ctx.agate.client({ masked: 'no' });
}

/** `sql` is refused as running stored code (agate.unverifiable, naming `what`), and people and ledger stay intact. */
async function refusedStored(ctx: HostileCtx, sql: string, what: RegExp): Promise<void> {
  ctx.refusals += 1;
  const r = await send(ctx, sql);
  assert.ok(!r.ok, `${sql}: ran`);
  assert.is(r.code, '42501', `${sql}: ${r.message}`);
  assert.match(r.message, 'rule "agate.unverifiable"', `${sql}: ${r.message}`);
  assert.match(r.message, what, `${sql}: ${r.message}`);
  await intact(ctx);
}

hostile('a trigger made earlier runs with an allowed INSERT: refused, naming the trigger (it deleted a refused table, ran a server program)', async (ctx) => {
  await plain(ctx);
  await refusedStored(ctx, "INSERT INTO notes VALUES (1, 'hi')", /trigger notes_wipe on public\.notes runs public\.wipe_ledger/);
  await refusedStored(ctx, "INSERT INTO outbox VALUES (1, 'hi')", /trigger outbox_send/);
  assert.not.ok(existsSync(PROGRAM_MARK), 'the server ran the program');
  // A change that cascades to another table fires that table's triggers.
  await refusedStored(ctx, 'UPDATE parents SET id = 2 WHERE id = 1', /trigger kids_moved on public\.kids .*a change of public\.parents changes public\.kids/);
  assert.is(await ctx.agate.pg.psql('SELECT id FROM public.parents'), '1');
});

hostile('a rule, a column default, a domain CHECK and an index expression made earlier run with an allowed write: refused', async (ctx) => {
  await plain(ctx);
  await refusedStored(ctx, 'INSERT INTO inbox VALUES (1)', /rule inbox_people on public\.inbox/);
  await refusedStored(ctx, 'INSERT INTO tickets (id) VALUES (1)', /default of public\.tickets\.stamp calls public\.stamp/);
  await refusedStored(ctx, 'INSERT INTO measures VALUES (1)', /constraint checked_int_check of domain checked_int/);
  await refusedStored(ctx, 'INSERT INTO gauges VALUES (1)', /index gauges_key on public\.gauges calls public\.gauge_key/);
  assert.is(await ctx.agate.pg.psql(`SELECT count(*) FROM pg_largeobject_metadata WHERE oid = ${LO}`), '1', 'the large object was unlinked');
  assert.is(await ctx.agate.pg.psql('SELECT (SELECT count(*) FROM public.inbox) + (SELECT count(*) FROM public.tickets) + (SELECT count(*) FROM public.measures) + (SELECT count(*) FROM public.gauges)'), '0');
});

hostile('a view over a refused table and a row security policy made earlier run with an allowed read: refused', async (ctx) => {
  await plain(ctx);
  ctx.refusals += 1;
  const r = await send(ctx, 'SELECT * FROM vault_view');
  assert.ok(!r.ok && /agate\.unverifiable/.test(r.message) && /view public\.vault_view/.test(r.message), JSON.stringify(r));
  assert.not.match(JSON.stringify(r), TOKEN, 'the view returned the token');
  await refusedStored(ctx, 'SELECT * FROM docs', /row security policy docs_see on public\.docs/);
});

hostile('a function, a procedure that commits and an operator made earlier: calling them is refused', async (ctx) => {
  await plain(ctx);
  await refusedStored(ctx, 'SELECT tidy()', /security definer function public\.tidy/);
  await refusedStored(ctx, 'CALL flush()', /security definer function public\.flush/);
  await refusedStored(ctx, 'SELECT ### 1', /operator public\.### calls public\.zap/);
  // Spelled as a field: `(1).zap` is `zap(1)`.
  await refusedStored(ctx, 'SELECT (1).zap', /function public\.zap/);
});

hostile('statements reaching no stored code run as before; an allow rule naming `stored` lets a trigger run, and the record names it', async (ctx) => {
  await plain(ctx);
  for (const sql of ["INSERT INTO scratch VALUES (1, 'x')", 'SELECT name FROM people ORDER BY id', "SELECT lower('X')", 'SELECT count(*) > 0 AS n FROM pg_stat_activity', 'SELECT pid FROM kids']) {
    const r = await send(ctx, sql);
    assert.ok(r.ok, `${sql}: ${JSON.stringify(r)}`);
  }
  const allowed = await ctx.agate.client({ stored: 'ok' });
  try {
    await allowed.query('INSERT INTO audited VALUES (7)');
  } finally {
    await allowed.end();
  }
  assert.is(await ctx.agate.pg.psql('SELECT id FROM public.audit_trail'), '7');
  await untilQuiet(ctx.agate);
  const command = ctx.agate.events().find((e) => e.type === 'Command' && (e as { text?: string }).text === 'INSERT INTO audited VALUES (7)') as { attributes: Record<string, string> } | undefined;
  assert.match(command?.attributes.stored_code ?? '', 'trigger audited_trail on public.audited runs public.audit_row');
  const scratch = ctx.agate.events().find((e) => e.type === 'Command' && (e as { text?: string }).text === "INSERT INTO scratch VALUES (1, 'x')") as { attributes: Record<string, string> } | undefined;
  assert.is(scratch?.attributes.stored_code, undefined);
});

hostile('an event trigger made earlier runs with the agent\'s DDL: refused', async (ctx) => {
  await plain(ctx);
  await ctx.agate.pg.psql(`CREATE FUNCTION public.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN UPDATE public.people SET name = 'event'; END$$;
CREATE EVENT TRIGGER agent_ddl ON ddl_command_end EXECUTE FUNCTION public.on_ddl();`);
  try {
    // The session read the catalog before the event trigger was made: it reads it again within a second.
    await new Promise((r) => setTimeout(r, 1_100));
    await refusedStored(ctx, 'CREATE TABLE fresh (id int)', /event trigger agent_ddl runs public\.on_ddl/);
    assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM pg_class WHERE relname = 'fresh'"), '0');
  } finally {
    await ctx.agate.pg.psql('DROP EVENT TRIGGER agent_ddl');
  }
});

hostile('pgaudit: everything PostgreSQL executed was recorded as allowed; nothing refused ran', async (ctx) => {
  const { entries, checked, report } = await auditAgent(ctx);
  assert.ok(report.checked >= 3, `pgaudit logged the attempts (${report.checked})`);
  assert.equal(report.unexplained, []);
  assert.equal(report.substituted, []);
  assert.equal(report.overrun, []);
  assert.equal(entries.filter((e) => checked(e) && /wipe_ledger|run_program|TO PROGRAM|inbox|tickets|measures|gauges|vault_view|docs|tidy|flush|###|zap|fresh/i.test(e.statement)).map((e) => e.statement), []);
  const refusedCount = ctx.agate.events().filter((e) => e.type === 'Response' && (e as { status?: string }).status === 'refused').length;
  assert.ok(refusedCount >= ctx.refusals, `${refusedCount} refusals recorded, ${ctx.refusals} expected`);
});

hostile.run();
