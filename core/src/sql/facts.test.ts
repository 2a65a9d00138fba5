import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { analyzeSql, initSqlParser } from './analyze.js';
import { qualifiedName, sqlFacts, type SqlFacts } from './facts.js';

/** The facts of a one-statement text; fails the test when it does not parse or cannot be analysed. */
function facts(sql: string): SqlFacts {
  const a = analyzeSql(sql);
  if (!a.ok || a.statements.length !== 1) throw new Error(`expected one statement: ${sql}`);
  const f = sqlFacts(a.statements[0]!);
  if (!f.ok) throw new Error(`no facts for ${sql}: ${f.error}`);
  return f.facts;
}
const error = (sql: string): string | undefined => {
  const a = analyzeSql(sql);
  if (!a.ok) return a.error;
  const f = sqlFacts(a.statements[0]!);
  return f.ok ? undefined : f.error;
};
const written = (f: SqlFacts) => f.tables.filter((t) => t.access === 'write').map((t) => t.qualified ?? t.name).sort();
const read = (f: SqlFacts) => f.tables.filter((t) => t.access === 'read').map((t) => t.qualified ?? t.name).sort();
const has = (f: SqlFacts, ...effects: string[]) => effects.every((e) => f.effects.has(e as never));

const targets = suite('sqlFacts: write targets');
targets.before(() => initSqlParser());

/** Relations a write also reads (TableRef.reads). */
const readThrough = (f: SqlFacts) => f.tables.filter((t) => t.access === 'write' && t.reads === true).map((t) => t.qualified ?? t.name).sort();

targets('a write that returns or tests the rows it changes also reads them; one that cannot does not', () => {
  for (const [sql, tables] of [
    ['SELECT * FROM vault FOR UPDATE', ['vault']],
    ['SELECT 1 FROM t WHERE a IN (SELECT b FROM vault FOR SHARE)', ['vault']],
    ['UPDATE vault SET id = id WHERE id = 1 RETURNING api_token', ['vault']],
    ['DELETE FROM vault WHERE id = 1', ['vault']],
    ['MERGE INTO vault v USING src s ON v.id = s.id WHEN MATCHED THEN DO NOTHING', ['vault']],
    ["INSERT INTO vault VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET id = excluded.id RETURNING api_token", ['vault']],
    ['CREATE VIEW v AS SELECT * FROM vault', ['vault']],
    ['CREATE VIEW s AS SELECT * FROM pg_stats', ['*', 'pg_stats']],
    ['CREATE INDEX ON vault ((api_token::int))', ['vault']],
    ['ALTER TABLE vault ALTER COLUMN api_token TYPE int USING api_token::int', ['vault']],
    ['ALTER TABLE vault ADD CHECK (api_token <> \'\')', ['vault']],
    ['ALTER TABLE vault ADD COLUMN g text GENERATED ALWAYS AS (upper(api_token)) STORED', ['vault']],
    ['ALTER TABLE vault INHERIT scratch', ['vault']],
    ['ALTER TABLE parent ATTACH PARTITION vault FOR VALUES IN (1)', ['parent', 'vault']],
    ['CREATE TRIGGER t AFTER UPDATE ON vault FOR EACH ROW EXECUTE FUNCTION keep()', ['vault']],
    ['CREATE RULE r AS ON UPDATE TO vault DO ALSO NOTIFY x', ['vault']],
    ['CREATE POLICY p ON vault USING (keep(api_token))', ['vault']],
    ['INSERT INTO vault VALUES (1) RETURNING id', []],
    ['TRUNCATE vault', []],
    ['DROP TABLE vault', []],
    ['COPY vault FROM STDIN', []],
    ['ALTER TABLE vault OWNER TO x', []],
    ['ALTER TABLE vault SET (fillfactor = 90), ALTER COLUMN api_token SET STATISTICS 0', []],
    ['ALTER TABLE parent DETACH PARTITION vault', []],
    ['LOCK TABLE vault IN ACCESS EXCLUSIVE MODE', []],
  ] as const) {
    assert.equal(readThrough(facts(sql)), tables, sql);
  }
});

targets('the relation a write changes is a written table (issue 16, item 3)', () => {
  assert.equal(written(facts('UPDATE users SET a = 1 WHERE id = 2')), ['users']);
  assert.equal(written(facts('INSERT INTO public.users VALUES (1)')), ['public.users']);
  assert.equal(written(facts('DELETE FROM users WHERE id = 1')), ['users']);
  assert.equal(written(facts('DROP TABLE users, app.orders')), ['app.orders', 'users']);
  assert.equal(written(facts('ALTER TABLE users ADD COLUMN x int')), ['users']);
  assert.equal(written(facts('COPY users FROM STDIN')), ['users']);
  assert.equal(written(facts('MERGE INTO users u USING src s ON u.id = s.id WHEN MATCHED THEN UPDATE SET a = 1')), ['users']);
  assert.equal(written(facts('TRUNCATE users, orders')), ['orders', 'users']);
  assert.equal(written(facts('LOCK TABLE users IN ACCESS EXCLUSIVE MODE')), ['users']);
  assert.equal(written(facts('CREATE INDEX ON users (email)')), ['users']);
  assert.equal(written(facts('DROP TRIGGER audit ON app.users')), ['app.users']);
  assert.equal(written(facts('DROP VIEW v_users')), ['v_users']);
  assert.equal(written(facts('ALTER TABLE users RENAME TO people')), ['users']);
  assert.equal(written(facts('GRANT SELECT ON users TO public')), ['users']);
  assert.equal(written(facts('CREATE TABLE part PARTITION OF users FOR VALUES IN (1)')), ['part', 'users']);
});

targets('reads stay reads: joins, sub-selects, USING, MERGE source, COPY TO', () => {
  const f = facts('DELETE FROM t USING users u WHERE t.id = u.id AND t.x IN (SELECT x FROM (SELECT x FROM a JOIN b ON true) s)');
  assert.equal(written(f), ['t']);
  assert.equal(read(f), ['a', 'b', 'users']);
  assert.equal(read(facts('MERGE INTO t USING users ON true WHEN MATCHED THEN DO NOTHING')), ['users']);
  assert.equal(read(facts('COPY users TO STDOUT')), ['users']);
  assert.equal(written(facts('COPY users TO STDOUT')), []);
  assert.equal(read(facts('SELECT * FROM generate_series(1, (SELECT max(id) FROM users))')), ['users']);
});

targets('a data-modifying CTE writes its table', () => {
  const f = facts('WITH d AS (DELETE FROM users WHERE id = 1 RETURNING *) SELECT * FROM d');
  assert.equal(written(f), ['users']);
  assert.ok(f.kinds.has('DeleteStmt') && has(f, 'write', 'read'));
});

const effects = suite('sqlFacts: effect classes');
effects.before(() => initSqlParser());

effects('destructive statements under other names are destroy (issue 16, item 5)', () => {
  for (const sql of [
    'DROP OWNED BY CURRENT_USER',
    'ALTER TABLE users DROP COLUMN email',
    'ALTER TABLE users DROP CONSTRAINT users_pkey',
    'DROP DATABASE appdb',
    'DROP SCHEMA app CASCADE',
    'TRUNCATE users',
    'DELETE FROM users',
    'UPDATE users SET email = NULL',
    'ALTER TABLE orders DETACH PARTITION orders_2024',
    'ALTER DOMAIN d DROP CONSTRAINT c',
    'DROP ROLE bob',
    'MERGE INTO users USING src ON true WHEN MATCHED THEN DELETE',
  ]) {
    assert.ok(facts(sql).effects.has('destroy'), sql);
  }
  // A bounded DELETE is a write, not a destroy.
  const bounded = facts('DELETE FROM users WHERE id = 1');
  assert.ok(bounded.effects.has('write') && !bounded.effects.has('destroy'));
});

effects('every object kind PostgreSQL can DROP is destroy', () => {
  const objects = [
    'TABLE t', 'VIEW v', 'MATERIALIZED VIEW m', 'INDEX i', 'INDEX CONCURRENTLY i', 'SEQUENCE s', 'FOREIGN TABLE f', 'SCHEMA s', 'TYPE t', 'DOMAIN d',
    'COLLATION c', 'CONVERSION c', 'EXTENSION e', 'FUNCTION f(int)', 'PROCEDURE p()', 'ROUTINE r', 'AGGREGATE a(int)', 'OPERATOR +(int, int)',
    'OPERATOR CLASS c USING btree', 'OPERATOR FAMILY f USING btree', 'TRIGGER t ON x', 'RULE r ON x', 'POLICY p ON x', 'PUBLICATION p',
    'SUBSCRIPTION s', 'SERVER s', 'FOREIGN DATA WRAPPER w', 'TEXT SEARCH CONFIGURATION c', 'TEXT SEARCH DICTIONARY d', 'TEXT SEARCH PARSER p',
    'TEXT SEARCH TEMPLATE t', 'ACCESS METHOD a', 'EVENT TRIGGER e', 'LANGUAGE l', 'CAST (int AS text)', 'TRANSFORM FOR int LANGUAGE l',
    'STATISTICS s', 'TABLESPACE t', 'DATABASE d', 'ROLE r', 'USER u', 'GROUP g', 'OWNED BY CURRENT_USER', 'USER MAPPING FOR u SERVER s',
  ];
  for (const object of objects) {
    const sql = `DROP ${object}`;
    const a = analyzeSql(sql);
    assert.ok(a.ok && a.statements.length === 1, `${sql} parses`);
    const f = a.ok ? sqlFacts(a.statements[0]!) : undefined;
    assert.ok(f?.ok === true && f.facts.effects.has('destroy'), sql);
  }
  for (const sql of ['DROP TABLE IF EXISTS t CASCADE', 'DROP SCHEMA IF EXISTS s, u CASCADE', 'DROP FUNCTION IF EXISTS f RESTRICT', 'DROP DATABASE IF EXISTS d WITH (FORCE)', 'DROP OWNED BY a, b CASCADE']) {
    assert.ok(facts(sql).effects.has('destroy'), sql);
  }
});

effects('privilege changes', () => {
  for (const sql of [
    'GRANT ALL ON users TO bob',
    'REVOKE ALL ON users FROM bob',
    'CREATE ROLE bob SUPERUSER',
    'ALTER ROLE bob WITH PASSWORD NULL',
    'ALTER TABLE users OWNER TO bob',
    'ALTER TABLE users DISABLE ROW LEVEL SECURITY',
    'SET ROLE admin',
    'SET SESSION AUTHORIZATION admin',
    'CREATE FUNCTION f() RETURNS int LANGUAGE sql SECURITY DEFINER AS $$SELECT 1$$',
    'ALTER FUNCTION f() SECURITY DEFINER',
    'REASSIGN OWNED BY bob TO alice',
    "SELECT set_config('role', 'admin', false)",
  ]) {
    assert.ok(facts(sql).effects.has('privilege'), sql);
  }
  assert.not.ok(facts('SET search_path TO app').effects.has('privilege'));
  // pg_dump's own call: the WHERE clause on pg_settings pins the setting.
  assert.not.ok(facts("SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'").effects.has('privilege'));
  assert.ok(facts("SELECT set_config(name, 'admin', false) FROM pg_catalog.pg_settings WHERE name = 'role'").effects.has('privilege'));
  assert.ok(facts("SELECT set_config(name, 'admin', false) FROM pg_settings WHERE name LIKE 'rol%'").effects.has('privilege'));
});

effects('MERGE carries the statements and effects of each action (issue 16, item 4)', () => {
  const f = facts('MERGE INTO users u USING src s ON u.id = s.id WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT VALUES (s.id)');
  assert.ok(f.kinds.has('DeleteStmt') && f.kinds.has('InsertStmt') && !f.kinds.has('UpdateStmt'));
  assert.ok(has(f, 'write', 'destroy'));
});

effects('COPY: direction, and server files or programs are admin', () => {
  assert.ok(has(facts("COPY users TO '/tmp/x'"), 'read', 'admin'));
  assert.ok(has(facts("COPY users FROM PROGRAM 'curl x'"), 'write', 'admin', 'opaque'));
  assert.ok(has(facts("COPY users TO PROGRAM 'gzip > /tmp/u'"), 'read', 'admin', 'opaque'));
  assert.not.ok(has(facts("COPY users FROM '/tmp/u.csv'"), 'opaque'));
  assert.not.ok(facts('COPY users FROM STDIN').effects.has('admin'));
});

const code = suite('sqlFacts: code the server runs (issue 16, item 2)');
code.before(() => initSqlParser());

code('a DO block carries the facts of its body, EXECUTE of a constant included', () => {
  const f = facts("DO $$ BEGIN EXECUTE 'DROP TABLE v'; END $$");
  assert.ok(f.kinds.has('DropStmt') && has(f, 'code', 'destroy'));
  assert.equal(written(f), ['v']);
  assert.not.ok(f.effects.has('dynamic'));
  const concatenated = facts("DO $$ BEGIN EXECUTE 'DROP ' || 'TABLE ' || 'v'::text; END $$");
  assert.ok(concatenated.kinds.has('DropStmt') && !concatenated.effects.has('dynamic'));
  const nested = facts("DO $a$ BEGIN EXECUTE $b$ DO $c$ BEGIN DELETE FROM users; END $c$ $b$; END $a$");
  assert.ok(nested.kinds.has('DeleteStmt') && nested.effects.has('destroy'));
  assert.equal(written(nested), ['users']);
});

code('EXECUTE of a text known only at run time is dynamic', () => {
  for (const sql of [
    "DO $$ DECLARE t text := 'v'; BEGIN EXECUTE format('DROP TABLE %I', t); END $$",
    "DO $$ DECLARE t text := 'v'; BEGIN EXECUTE 'DROP TABLE ' || t; END $$",
    "DO $$ DECLARE r record; q text := 'x'; BEGIN FOR r IN EXECUTE q LOOP END LOOP; END $$",
    "DO $$ DECLARE c refcursor; q text := 'x'; BEGIN OPEN c FOR EXECUTE q; END $$",
    "CREATE FUNCTION f(q text) RETURNS SETOF int LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY EXECUTE q; END $$",
    'SELECT query_to_xml(current_setting(\'x\'), true, false, \'\')',
    "SELECT dblink_exec('dbname=app', 'DROP TABLE v')",
  ]) {
    assert.ok(facts(sql).effects.has('dynamic'), sql);
  }
});

code('a FETCH, MOVE or CLOSE in code, and cursor_to_xml, reach a portal named at run time: dynamic; loops and OPEN are not', () => {
  for (const sql of [
    "DO $$ DECLARE c refcursor := 'p'; r record; BEGIN FETCH c INTO r; END $$",
    "DO $$ DECLARE c refcursor; BEGIN c := 'p'; MOVE FORWARD ALL IN c; END $$",
    'DO $$ DECLARE p CURSOR FOR SELECT 1; BEGIN CLOSE p; END $$',
    "CREATE FUNCTION f(n refcursor) RETURNS void LANGUAGE plpgsql AS $$ DECLARE r record; BEGIN FETCH n INTO r; END $$",
    "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'CLOSE p'",
    "SELECT cursor_to_xml('p', 10, false, false, '')",
    "SELECT pg_catalog.cursor_to_xml(c, 1, true, false, '') FROM (SELECT 'p'::refcursor AS c) s",
  ]) {
    assert.ok(facts(sql).effects.has('dynamic'), sql);
  }
  for (const sql of [
    'DO $$ DECLARE c CURSOR FOR SELECT 1 AS x; r record; BEGIN FOR r IN c LOOP END LOOP; END $$',
    'DO $$ DECLARE c refcursor; BEGIN OPEN c FOR SELECT 1; END $$',
    'FETCH ALL FROM p',
    'CLOSE p',
  ]) {
    assert.not.ok(facts(sql).effects.has('dynamic'), sql);
  }
});

code('static statements anywhere in a PL/pgSQL body are seen', () => {
  const f = facts(`CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE n int := (SELECT count(*) FROM counted);
    BEGIN
      IF NEW.id > (SELECT max(id) FROM limits) THEN
        DELETE FROM users WHERE id = NEW.id;
      END IF;
      FOR i IN 1..3 LOOP UPDATE stats SET n = n + 1 WHERE id = i; END LOOP;
      NEW.total := (SELECT sum(x) FROM totals);
      RETURN NEW;
    EXCEPTION WHEN others THEN TRUNCATE audit; RETURN NULL;
    END $$`);
  assert.equal(written(f), ['audit', 'stats', 'users']);
  assert.equal(read(f), ['counted', 'limits', 'totals']);
  assert.ok(has(f, 'ddl', 'code', 'write', 'destroy', 'read') && !f.effects.has('dynamic'));
});

code('SQL-language bodies: quoted and BEGIN ATOMIC', () => {
  const quoted = facts("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DROP TABLE v'");
  assert.ok(quoted.kinds.has('DropStmt') && quoted.effects.has('destroy'));
  const atomic = facts('CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC DELETE FROM users WHERE id = 1; INSERT INTO log VALUES (1); END');
  assert.equal(written(atomic), ['log', 'users']);
});

code('triggers and rules carry their action; other languages are opaque', () => {
  const rule = facts('CREATE RULE r AS ON INSERT TO t DO ALSO DELETE FROM users');
  assert.ok(rule.kinds.has('DeleteStmt') && written(rule).includes('users'));
  const trigger = facts('CREATE TRIGGER t BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION f()');
  assert.ok(has(trigger, 'code', 'ddl'));
  assert.ok(facts("CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS 'return 1'").effects.has('opaque'));
  assert.ok(facts("CREATE FUNCTION f() RETURNS int LANGUAGE c AS 'lib', 'sym'").effects.has('opaque'));
  assert.ok(facts("DO LANGUAGE plperl $$ system('rm -rf /') $$").effects.has('opaque'));
});

code('a body Agate cannot read is an error, never an empty fact set', () => {
  assert.match(error('DO $$ BEGIN DELET FROM users; END $$') ?? '', /syntax error/);
  assert.match(error("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DELET FROM users'") ?? '', /does not parse/);
  assert.match(error("DO $$ BEGIN EXECUTE 'DELET FROM users'; END $$") ?? '', /does not parse/);
  // Nine SQL strings deep.
  let sql = 'SELECT 1';
  for (let i = 0; i < 9; i++) sql = `DO $${'q'.repeat(i + 1)}$ BEGIN EXECUTE ${`'${sql.replaceAll("'", "''")}'`}; END $${'q'.repeat(i + 1)}$`;
  assert.match(error(sql) ?? '', /nested more than/);
});

code('a constant chain longer than any real one counts as dynamic, not as a crash', () => {
  const chain = Array.from({ length: 2000 }, () => "'a'").join(' || ');
  assert.ok(facts(`DO $$ BEGIN EXECUTE ${chain}; END $$`).effects.has('dynamic'));
});

code('a statement nested deeper than any recursion limit is still walked to the end', () => {
  const depth = 5000;
  const f = facts(`SELECT ${'('.repeat(depth)}(SELECT 1 FROM deep)${')'.repeat(depth)}`);
  assert.equal(read(f), ['deep']);
});

const byValue = suite('sqlFacts: relations handed to a built-in as a value');
byValue.before(() => initSqlParser());

byValue('a regclass given as text is read as the server reads it', () => {
  assert.equal(qualifiedName('vault'), ['vault']);
  assert.equal(qualifiedName(' Public . VAULT '), ['public', 'vault']);
  assert.equal(qualifiedName('"Public"."a""b"'), ['Public', 'a"b']);
  assert.equal(qualifiedName('db.s.t'), ['s', 't']);
  assert.equal(qualifiedName('x'.repeat(70)), ['x'.repeat(63)]);
  for (const text of ['16384', '', 'a.', '.a', 'a b', '"a', 'a.b.c.d', '""']) assert.is(qualifiedName(text), undefined, text);
});

byValue('table_to_xml and friends read the relation, schema or database they are handed', () => {
  assert.equal(read(facts("SELECT table_to_xml('vault', true, false, '')")), ['vault']);
  assert.equal(read(facts("SELECT pg_catalog.table_to_xml_and_xmlschema('app.Vault'::regclass, true, false, '')")), ['app.vault']);
  assert.equal(read(facts("SELECT table_to_xml(nulls => true, tbl => 'vault', tableforest => false, targetns => '')")), ['vault']);
  assert.equal(read(facts("SELECT schema_to_xml('App', true, false, '')")), ['App.*']);
  assert.equal(read(facts("SELECT database_to_xml(true, false, '')")), ['*']);
  // A name only the server will know: every relation.
  assert.equal(read(facts("SELECT table_to_xml(t, true, false, '') FROM (SELECT 'vault'::regclass) s(t)")), ['*']);
  assert.equal(read(facts("SELECT table_to_xml(16384, true, false, '')")), ['*']);
  assert.equal(read(facts("SELECT table_to_xml($1, true, false, '')")), ['*']);
  // The planner's statistics hold values of every analysed column.
  assert.ok(read(facts("SELECT most_common_vals FROM pg_stats WHERE tablename = 'vault'")).includes('*'));
  assert.not.ok(read(facts('SELECT * FROM app.pg_stats')).includes('*'));
});

byValue('nextval and setval write the sequence they are handed', () => {
  for (const sql of ["SELECT nextval('invoice_no')", "SELECT setval('invoice_no', 1)", "INSERT INTO t VALUES (nextval('invoice_no'))"]) {
    const f = facts(sql);
    assert.ok(written(f).includes('invoice_no') && f.effects.has('write'), sql);
  }
  assert.equal(written(facts("ALTER TABLE t ALTER COLUMN id SET DEFAULT nextval('public.invoice_no')")), ['public.invoice_no', 't']);
  assert.equal(written(facts('SELECT nextval($1)')), ['*']);
  assert.not.ok(facts("SELECT currval('invoice_no')").effects.has('write'));
});

byValue('pg_notify is a NOTIFY', () => {
  for (const sql of ["SELECT pg_notify('jobs', 'run')", 'CREATE OPERATOR ### (leftarg = text, rightarg = text, function = pg_notify)', "SELECT pg_catalog.pg_notify(c, 'x') FROM t", "SELECT query_to_xml('SELECT pg_notify(''j'', '''')', true, false, '')"]) {
    const f = facts(sql);
    assert.ok(f.kinds.has('NotifyStmt') && f.effects.has('session'), sql);
  }
});

const names = suite('sqlFacts: the functions, operators and types a statement names (for stored code)');
names.before(() => initSqlParser());

names('calls by any spelling, bound functions, operators and cast types; bodies included', () => {
  const f = facts("SELECT s.f(1), g(), (x).h, ### 1, a OPERATOR(s.@@) b, '1'::dom, CAST(2 AS s.t) FROM t");
  assert.equal([...f.calls].sort(), ['f', 'g', 'h', 's.f']);
  assert.equal([...f.operators].sort(), ['###', '@@', 's.@@']);
  assert.equal([...f.types].sort(), ['dom', 's.t', 't']);
  assert.equal([...facts('CALL p(1)').calls], ['p']);
  assert.equal([...facts('CREATE TRIGGER x AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION s.trig()').calls].sort(), ['s.trig', 'trig']);
  assert.ok(facts('DO $$BEGIN PERFORM inner_fn(); END$$').calls.has('inner_fn'));
});

targets.run();
effects.run();
code.run();
byValue.run();
names.run();
