// Unique canaries planted in the channels the issue found leaking (role passwords in every literal
// spelling, startup parameters, column-rule columns written and read through INSERT, UPDATE,
// bound parameters, COPY TO and FROM and row_to_json, connection strings, set_config), sent
// through a real `agate start` to a real PostgreSQL. None may reach the raw bus log, the ledger
// store (bodies and Avro payloads) or Agate's own logs.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { EmbeddedStore } from '../../core/src/store/embedded.js';
import { run } from '../harness/proc.js';
import type { Command, Response, SessionOpened } from '../../schemas/src/events.js';
import { startAgate, untilAnswered, waitForEvents, type AgateFixture } from './agate-fixture.js';

const canary = (label: string) => `CANARY-${label}-${randomBytes(6).toString('hex')}`;
const c = {
  uescape: canary('uescape'),
  estring: canary('estring'),
  dollar: canary('dollar'),
  nested: canary('nested'),
  appName: canary('appname'),
  insertLiteral: canary('insert-literal'),
  insertParam: canary('insert-param'),
  updateLiteral: canary('update-literal'),
  copyIn: canary('copy-in'),
  seeded: canary('seeded'),
  conninfo: canary('conninfo'),
  uri: canary('uri'),
  setConfigParam: canary('setconfig-param'),
  setConfigLiteral: canary('setconfig-literal'),
};

/** \u escapes for U&'…': the canary never appears verbatim in the SQL sent either. */
const unicodeEscaped = (s: string) => [...s].map((ch) => `\\${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');

const Canaries = suite<{ agate: AgateFixture }>('canaries: secrets in every channel stay out of the record');

Canaries.before(async (ctx) => {
  ctx.agate = await startAgate({ policyYaml: 'policy:\n  default: allow\n' });
  // So the role statements really run upstream (the masked text is only what is recorded).
  await ctx.agate.pg.psql(`ALTER ROLE ${ctx.agate.pg.users.scram.user} CREATEROLE`);
  await ctx.agate.pg.psql(`CREATE TABLE vault (id int PRIMARY KEY, api_token text, note text); GRANT ALL ON vault TO PUBLIC;
    INSERT INTO vault VALUES (100, '${c.seeded}', 'host=db port=5432 password=${c.conninfo} dbname=x'), (101, 'plain', 'postgresql://app:${c.uri}@db:5432/app');`);
});

Canaries.after(async (ctx) => {
  await ctx.agate?.cleanup();
});

Canaries('role passwords in U&, E, dollar-quoted and nested spellings', async ({ agate }) => {
  const client = await agate.client();
  try {
    await client.query(`CREATE ROLE canary_u LOGIN PASSWORD U&'${unicodeEscaped(c.uescape)}'`);
    await client.query(`ALTER ROLE canary_u PASSWORD E'${c.estring}'`);
    await client.query(`ALTER USER canary_u WITH ENCRYPTED PASSWORD $pw$${c.dollar}$pw$`);
    await client.query(`DO $$BEGIN EXECUTE 'ALTER ROLE canary_u PASSWORD ''${c.nested}'''; END$$`);
  } finally {
    await client.end();
  }
  // They ran upstream (their recorded, masked text was decided like any other).
  assert.is(await agate.pg.psql(`SELECT rolname FROM pg_authid WHERE rolname = 'canary_u'`), 'canary_u');
  const texts = (await waitForEvents(agate, (ev) => ev.some((e) => e.type === 'Command' && e.text.startsWith('DO $$')))).filter((e): e is Command => e.type === 'Command').map((e) => e.text);
  assert.ok(texts.some((t) => /^CREATE ROLE canary_u LOGIN PASSWORD '\[masked:password\]'$/.test(t)), texts.join('\n'));
  const roleCommands = agate.events().filter((e): e is Command => e.type === 'Command' && /canary_u/.test(e.text));
  assert.is(roleCommands.length, 4);
  const ids = new Set(roleCommands.map((command) => command.event_id));
  const responses = (await waitForEvents(agate, (ev) => ev.filter((e) => e.type === 'Response' && ids.has(e.command_id)).length === 4))
    .filter((e): e is Response => e.type === 'Response' && ids.has(e.command_id));
  assert.equal(responses.map((r) => r.status), ['ok', 'ok', 'ok', 'ok']);
});

Canaries('startup parameters in SessionOpened are masked (application_name carrying a connection string)', async ({ agate }) => {
  const client = new pg.Client({ host: agate.host, port: agate.port, database: 'appdb', user: 'agent', password: await agate.token(), application_name: `job password=${c.appName}` });
  await client.connect();
  await client.query('SELECT 1');
  await client.end();
  const opened = (await waitForEvents(agate, (ev) => ev.some((e) => e.type === 'SessionOpened' && (e.attributes.application_name ?? '').startsWith('job '))))
    .find((e): e is SessionOpened => e.type === 'SessionOpened' && (e.attributes.application_name ?? '').startsWith('job '))!;
  assert.is(opened.attributes.application_name, 'job password=[masked:connection_string]');
  assert.is(opened.attributes.user, 'agent');
});

Canaries('column rules reach INSERT literals, bound parameters, UPDATE, COPY FROM and TO, row_to_json', async ({ agate }) => {
  const client = await agate.client();
  try {
    await client.query(`INSERT INTO vault (id, api_token) VALUES (1, '${c.insertLiteral}')`);
    await client.query('INSERT INTO vault (id, api_token) VALUES ($1, $2)', [2, c.insertParam]);
    await client.query(`UPDATE vault SET api_token = '${c.updateLiteral}' WHERE id = 1`);
    const rows = await client.query('SELECT row_to_json(v) AS doc FROM vault v WHERE id IN (1, 2, 100) ORDER BY id');
    assert.is(rows.rows[2].doc.api_token, c.seeded, 'the client (no mask_client) reads the real value');
    await client.query('SELECT json_agg(v) FROM vault v');
  } finally {
    await client.end();
  }
  // COPY through psql: out with and without a column list, and in.
  const env = await agate.libpqEnv();
  const out = await run('psql', ['-X', '-q', '-c', '\\copy vault TO STDOUT', '-c', '\\copy vault (id, api_token) TO STDOUT'], { env });
  assert.ok(out.stdout.includes(c.seeded), out.stderr);
  const into = await run('sh', ['-c', `printf '3\\t${c.copyIn}\\n' | psql -X -q -c '\\copy vault (id, api_token) FROM STDIN'`], { env });
  assert.is(into.code, 0, into.stderr);
  assert.is(await agate.pg.psql(`SELECT api_token FROM vault WHERE id = 3`), c.copyIn);
});

Canaries('connection strings in result samples and set_config values in parameters and samples', async ({ agate }) => {
  const client = await agate.client();
  try {
    const notes = await client.query('SELECT note FROM vault WHERE id IN (100, 101) ORDER BY id');
    assert.match(notes.rows[0].note, c.conninfo);
    await client.query("SELECT set_config('app.api_key', $1, false)", [c.setConfigParam]);
    await client.query(`SELECT set_config('app.other', '${c.setConfigLiteral}', false)`);
  } finally {
    await client.end();
  }
});

Canaries('no canary in the raw bus log, the ledger store or the logs', async ({ agate }) => {
  await waitForEvents(agate, (ev) => ev.some((e) => e.type === 'Command' && e.text.includes("'app.other'")));
  await untilAnswered(agate); // then stop() drains what the ledger has not stored yet
  // Every leak is named at once, not just the first.
  const log = agate.busLog();
  assert.equal(Object.entries(c).filter(([, n]) => log.includes(Buffer.from(n))).map(([name]) => name), [], 'canaries in the bus log');
  const logs = agate.logs();
  assert.equal(Object.entries(c).filter(([, n]) => logs.includes(n)).map(([name]) => name), [], 'canaries in the logs');
  await agate.stop();
  const store = EmbeddedStore.open(join(agate.dir, 'data', 'store'));
  try {
    const rows = await store.query<{ payload: string; body: string }>('SELECT payload, body FROM agate.ledger');
    assert.ok(rows.length > 20, `the ledger holds the sessions (${rows.length} records)`);
    const leaked = new Set<string>();
    for (const r of rows) {
      const payload = Buffer.from(r.payload, 'base64');
      for (const [name, n] of Object.entries(c)) if (r.body.includes(n) || payload.includes(Buffer.from(n))) leaked.add(name);
    }
    assert.equal([...leaked], [], 'canaries in the ledger store');
  } finally {
    await store.close();
  }
});

Canaries.run();
