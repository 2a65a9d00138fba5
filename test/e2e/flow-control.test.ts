// Flow control through the real proxy: while a statement waits for its verdict (held for
// approval here), Agate reads no further client frames, so a client that pipelines 64 MiB behind
// it fills the kernel buffers and then its own, and Agate's memory does not grow with it. Once
// the verdict comes (the hold expires: refused), reading resumes and the pipeline completes.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { serialize } from 'pg-protocol';
import { startAgate, type AgateFixture } from './agate-fixture.js';
import { RawClient } from './raw-client.js';

const flow = suite<{ agate: AgateFixture }>('flow control: no client frame is read while a verdict is pending');

flow.before(async (ctx) => {
  ctx.agate = await startAgate({
    policyYaml: `policy:
  default: allow
  rules:
    - id: delete-needs-dba
      action: hold
      match: { sql: { statements: [DeleteStmt] } }
      approval: { approvers: { claims: { team: dba } }, timeout_s: 3 }
`,
  });
});
flow.after(async (ctx) => {
  await ctx.agate?.cleanup();
});

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

flow('a pipeline behind a held statement stays in the client until the verdict', async ({ agate }) => {
  const c = await RawClient.login(agate.host, agate.port, await agate.token());
  try {
    const rssBefore = rssMiB(agate.pid);
    // 8 Parse messages of 8 MiB each (under the 16 MiB frame limit): no verdict needed for them,
    // so only the pending DELETE can hold them back.
    const padding = '-'.repeat(8 << 20);
    const parses = Array.from({ length: 8 }, () => serialize.parse({ text: `SELECT 1 --${padding}` }));
    c.send(serialize.query('DELETE FROM pg_catalog.pg_class WHERE false'));
    c.send(...parses, serialize.sync());
    await c.until((r) => r.name === 'notice'); // the statement is held: its verdict is pending
    await sleep(1000);
    const unsent = c.unsentBytes;
    const rssHeld = rssMiB(agate.pid);
    // The kernel's socket buffers take a few MiB; the rest must still be in the client.
    assert.ok(unsent > 32 << 20, `the proxy kept reading while the verdict was pending: only ${unsent} bytes left in the client`);
    // Reading the pipeline would hold its 64 MiB at least; the embedded engine's own background
    // work moves the RSS by up to ~30 MiB on its own, so the bound sits between the two.
    assert.ok(rssHeld - rssBefore < 48, `Agate's memory grew by ${(rssHeld - rssBefore).toFixed(0)} MiB while the verdict was pending`);

    // The hold expires: the DELETE is refused, then the pipeline is read and runs.
    const all = await c.readyCount(2);
    const refusal = all.find((r) => r.name === 'error');
    assert.is(refusal?.code, '42501');
    assert.is(all.filter((r) => r.name === 'parseComplete').length, 8);
    assert.is(c.unsentBytes, 0);
  } finally {
    c.close();
  }
});

flow.run();
