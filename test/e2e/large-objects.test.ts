// Protocol FunctionCall (what libpq's large-object API sends): decided and recorded by the
// function it calls, so psql's \lo_import and pg_dump of a database with a large object work
// through Agate under `default: allow`. Real psql and pg_dump, real PostgreSQL 15.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serialize } from 'pg-protocol';
import type { Command, Response, Verdict } from '../../schemas/src/events.js';
import { DEFAULT_PG_BIN } from '../harness/postgres.js';
import { run } from '../harness/proc.js';
import { startAgate, waitForEvents, type AgateFixture } from './agate-fixture.js';
import { RawClient } from './raw-client.js';

const bin = (tool: string) => join(process.env.AGATE_PG_BIN ?? DEFAULT_PG_BIN, tool);
const lo = suite<{ agate: AgateFixture }>('large objects: FunctionCall decided by the function it calls');

lo.before(async (ctx) => {
  ctx.agate = await startAgate();
});
lo.after(async (ctx) => {
  await ctx.agate?.cleanup();
});

const calls = (agate: AgateFixture) => agate.events().filter((e): e is Command => e.type === 'Command' && e.attributes.message === 'FunctionCall');
const CONTENT = 'large object through Agate\n';

lo('psql \\lo_import, then pg_dump of the database with the large object', async ({ agate }) => {
  const file = join(agate.dir, 'blob.txt');
  writeFileSync(file, CONTENT);
  const env = await agate.libpqEnv();
  const imported = await run(bin('psql'), ['-X', '-w', '-c', `\\lo_import ${file}`], { env, timeoutMs: 30_000 });
  assert.is(imported.code, 0, imported.stderr);
  const oid = /lo_import (\d+)/.exec(imported.stdout)?.[1];
  assert.ok(oid !== undefined, imported.stdout);
  assert.is(await agate.pg.psql(`SELECT encode(lo_get(${oid}), 'hex')`), Buffer.from(CONTENT).toString('hex'));

  const dump = await run(bin('pg_dump'), ['--no-owner', 'appdb'], { env: { ...(await agate.libpqEnv()) }, timeoutMs: 60_000 });
  assert.is(dump.code, 0, dump.stderr);
  assert.match(dump.stdout, `lo_create('${oid}')`);
  assert.match(dump.stdout, Buffer.from(CONTENT).toString('hex'), 'the large object’s bytes are in the dump');

  const recorded = await waitForEvents(agate, () => ['lowrite', 'loread'].every((f) => calls(agate).some((c) => c.attributes.function === `pg_catalog.${f}`)));
  const write = calls(agate).find((c) => c.attributes.function === 'pg_catalog.lowrite')!;
  assert.match(write.text, /^SELECT pg_catalog\.lowrite\(\$1, \$2\)$/);
  assert.is(write.parameters[1], '\\x' + Buffer.from(CONTENT).toString('hex'));
  for (const c of calls(agate)) {
    assert.match(c.attributes.function_oid!, /^\d+$/);
    const v = recorded.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === c.event_id);
    assert.is(v?.decision, 'allow', c.text);
  }
  await waitForEvents(agate, (ev) => ev.some((e): e is Response => e.type === 'Response' && e.command_id === write.event_id && e.status === 'ok'));
});

lo('a FunctionCall to an OID no function has is refused (42883) and recorded', async ({ agate }) => {
  const c = await RawClient.login(agate.host, agate.port, await agate.token());
  try {
    // 'F' | len | Int32 oid | Int16 0 formats | Int16 0 args | Int16 0 result format
    const body = Buffer.alloc(4 + 2 + 2 + 2);
    body.writeUInt32BE(4_000_000_000, 0);
    const frame = Buffer.concat([Buffer.from([0x46]), Buffer.alloc(4), body]);
    frame.writeUInt32BE(4 + body.length, 1);
    c.send(frame);
    const replies = await c.readyCount(1);
    const error = replies.find((r) => r.name === 'error')!;
    assert.is(error.code, '42883');
    // The session goes on.
    c.send(serialize.query('SELECT 1'));
    assert.ok((await c.readyCount(1)).some((r) => r.name === 'commandComplete'));
  } finally {
    c.close();
  }
  const refused = (await waitForEvents(agate, () => calls(agate).some((x) => x.text === 'FunctionCall 4000000000')), calls(agate).find((x) => x.text === 'FunctionCall 4000000000')!);
  await waitForEvents(agate, (ev) => ev.some((e) => e.type === 'Response' && e.command_id === refused.event_id && e.status === 'refused'));
});

lo.run();
