import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { analyzeSql, initSqlParser } from '../../../../core/src/sql/analyze.js';
import { sqlFacts, type SqlFacts } from '../../../../core/src/sql/facts.js';
import { StoredCodeCatalog, STORED_CODE_TTL_MS, storedCode, storedCodeOf } from './stored-code.js';
import type { CatalogLookup } from './catalog-lookup.js';

function facts(sql: string): SqlFacts[] {
  const a = analyzeSql(sql);
  if (!a.ok) throw new Error(`does not parse: ${sql}`);
  return a.statements.map((s) => {
    const f = sqlFacts(s);
    if (!f.ok) throw new Error(`no facts for ${sql}: ${f.error}`);
    return f.facts;
  });
}

/** Rows as the catalog question answers them: (fires, schema, name, what). */
const ROWS: (string | null)[][] = [
  ['write', 'public', 'notes', 'trigger t on public.notes runs public.f'],
  ['write', 'public', 'kids', 'trigger k on public.kids runs public.g'],
  ['any', 'public', 'vault_view', 'view public.vault_view'],
  ['any', 'app', 'docs', 'row security policy p on app.docs'],
  ['ddl', '', 'on_ddl', 'event trigger on_ddl runs public.h'],
  ['call', 'public', 'tidy', 'security definer function public.tidy'],
  ['operator', 'public', '###', 'operator public.### calls public.zap'],
  ['type', 'public', 'checked', 'constraint c of domain public.checked calls public.chk'],
];
/** parents → kids by a cascading foreign key, kids → kid_parts as a partition. */
const EDGES: (string | null)[][] = [['public', 'parents', 'public', 'kids']];
const code = storedCode(ROWS, EDGES);
const reached = (sql: string) => storedCodeOf(code, facts(sql)).sort();

const reach = suite('storedCodeOf: what stored code a statement reaches');
reach.before(() => initSqlParser());

reach('a change of a table reaches its triggers, and those of the tables it changes with it; a read does not', () => {
  assert.equal(reached("INSERT INTO notes VALUES (1, 'x')"), ['trigger t on public.notes runs public.f']);
  assert.equal(reached("UPDATE public.notes SET body = 'x' WHERE id = 1"), ['trigger t on public.notes runs public.f']);
  assert.equal(reached('SELECT * FROM notes'), []);
  assert.equal(reached("INSERT INTO other.notes VALUES (1, 'x')"), [], 'another schema\'s notes');
  assert.equal(reached('UPDATE parents SET id = 2 WHERE id = 1'), ['trigger k on public.kids runs public.g (a change of public.parents changes public.kids)']);
  // Inside a DO block, a CTE, a function created now: still the statement's.
  assert.equal(reached("DO $$BEGIN INSERT INTO notes VALUES (1, 'x'); END$$"), ['trigger t on public.notes runs public.f']);
  assert.equal(reached("WITH x AS (INSERT INTO notes VALUES (1, 'x') RETURNING id) SELECT * FROM x"), ['trigger t on public.notes runs public.f']);
});

reach('any use of a view or of a table with a policy reaches it; calls, operators, casts and DDL reach theirs', () => {
  assert.equal(reached('SELECT * FROM vault_view'), ['view public.vault_view']);
  assert.equal(reached('SELECT * FROM docs'), ['row security policy p on app.docs'], 'unqualified: any schema');
  assert.equal(reached('SELECT * FROM public.docs'), []);
  assert.equal(reached('SELECT tidy()'), ['security definer function public.tidy']);
  assert.equal(reached('CALL tidy()'), ['security definer function public.tidy']);
  assert.equal(reached('SELECT (1).tidy'), ['security definer function public.tidy'], 'a call spelled as a field');
  assert.equal(reached('SELECT other.tidy()'), ['security definer function public.tidy'], 'a qualified call counts by its bare name too');
  assert.equal(reached('SELECT ### 1'), ['operator public.### calls public.zap']);
  assert.equal(reached("SELECT '1'::checked"), ['constraint c of domain public.checked calls public.chk']);
  assert.equal(reached('CREATE TABLE fresh (id int)'), ['event trigger on_ddl runs public.h']);
  assert.equal(reached('GRANT SELECT ON people TO x'), ['event trigger on_ddl runs public.h']);
  // Bound into an object defined now: a trigger made on an allowed table to run tidy.
  assert.equal(reached('CREATE TRIGGER x AFTER INSERT ON scratch FOR EACH ROW EXECUTE FUNCTION tidy()'), ['event trigger on_ddl runs public.h', 'security definer function public.tidy']);
  assert.equal(reached("SELECT lower('X'), 1 + 1"), []);
});

reach('a statement reaching every table reaches every trigger; a target with no stored code reaches nothing', () => {
  assert.ok(reached('DROP OWNED BY x').includes('trigger t on public.notes runs public.f'));
  const none = storedCode([], []);
  assert.ok(none.empty);
  assert.equal(storedCodeOf(none, facts('SELECT tidy(); INSERT INTO notes VALUES (1)')), []);
});

const catalog = suite('StoredCodeCatalog: when the catalog is read');

/** A lookup that counts its questions and answers `answer()`. */
function fakeLookup(answer: () => (string | null)[][]): { lookup: CatalogLookup; asked: () => number } {
  let asked = 0;
  const lookup = { select: async () => (asked++, answer()), close: () => undefined } as unknown as CatalogLookup;
  return { lookup, asked: () => asked };
}

catalog('read once, kept for the TTL, read again after it or after invalidate(); a failed reading is not kept', async () => {
  let now = 0;
  let fail = false;
  const { lookup, asked } = fakeLookup(() => {
    if (fail) throw new Error('down');
    return [];
  });
  const c = new StoredCodeCatalog(lookup, () => now);
  c.refresh();
  await c.read();
  await c.read();
  assert.is(asked(), 2, 'one reading is two questions (objects, change edges)');
  now += STORED_CODE_TTL_MS;
  await c.read();
  assert.is(asked(), 4);
  c.invalidate();
  await c.read();
  assert.is(asked(), 6);
  fail = true;
  c.invalidate();
  await c.read().then(() => assert.unreachable('read'), (e: Error) => assert.is(e.message, 'down'));
  fail = false;
  assert.ok((await c.read()).empty);
});

reach.run();
catalog.run();
