import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../core/src/package-root.js';
import { run } from '../../test/harness/proc.js';

/*
 * What the real `agate` binary writes into a real pipe whose reader is slow (it starts reading
 * after the pipe's 64 KiB buffer filled), and how it exits. The query API here is a stand-in
 * serving canned bodies, so that the CLI's own output path is what is under test; the real API
 * behind these commands is exercised in cli.test.ts.
 */
interface Ctx { dir: string; server: Server; url: string; config: string; sql: string; session: string; sessions: string }
const out = suite<Ctx>('agate output through pipes, and exit codes');

out.before(async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), 'agate-cli-output-'));
  ctx.config = join(ctx.dir, 'agate.yaml');
  // No dev issuer: a read command without --token is a usage error.
  writeFileSync(ctx.config, 'identity: { issuers: [{ issuer: "https://issuer.example", audience: agate }] }\n');
  ctx.sql = Array.from({ length: 4000 }, (_, i) => JSON.stringify({ n: i, text: `row ${i} ${'x'.repeat(50)}` })).join('\n') + '\n';
  const commands = Array.from({ length: 800 }, (_, i) => ({ sequence: i, time: '2026-01-01 00:00:00', decision: 'allow', decided_by: 'policy', approvers: [], rule_id: 'r', status: 'ok', command_tag: 'SELECT 1', rows: 1, bytes: 10, digest: null, text: `SELECT ${i} -- ${'y'.repeat(120)}` }));
  ctx.session = JSON.stringify({ session: { session_id: 's1', protocol: 'postgres', target: 'db', subject: 'agent', issuer: 'https://issuer.example', opened_at: '2026-01-01', closed_at: null, client_address: '127.0.0.1:1' }, commands });
  ctx.sessions = JSON.stringify({ sessions: [{ session_id: 's1', opened_at: '2026-01-01', subject: 'agent', target: 'db', commands: 800, denied: 0, closed_at: null }], next_cursor: null });
  ctx.server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const body = req.method === 'POST' && path === '/v1/sql' ? ctx.sql : path === '/v1/sessions/s1' ? ctx.session : path === '/v1/sessions' ? ctx.sessions : undefined;
    req.resume();
    if (body === undefined) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"API_NOT_FOUND","message":"no route"}}');
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((r) => ctx.server.listen(0, '127.0.0.1', r));
  ctx.url = `http://127.0.0.1:${(ctx.server.address() as AddressInfo).port}`;
});

out.after(async (ctx) => {
  await new Promise((r) => ctx.server.close(r));
  rmSync(ctx.dir, { recursive: true, force: true });
});

const AGATE = () => `${JSON.stringify(process.execPath)} ${JSON.stringify(join(packageRoot(), 'bin/agate.js'))}`;

/** Runs `agate ARGS | READER` in bash; resolves with agate's own exit status and what the reader wrote. */
async function piped(ctx: Ctx, args: string, reader: string): Promise<{ status: number | null; output: Buffer; stderr: string }> {
  const file = join(ctx.dir, 'out');
  const script = `${AGATE()} ${args} --config ${ctx.config} --url ${ctx.url} --token t | ${reader} > ${file}; exit "\${PIPESTATUS[0]}"`;
  const r = await run('bash', ['-c', script], { timeoutMs: 60_000 });
  return { status: r.code, output: readFileSync(file), stderr: r.stderr };
}

/** Runs `agate ARGS` (no pipe) for its exit status and stderr. */
async function agate(...args: string[]): Promise<{ status: number | null; stderr: string; stdout: string }> {
  const r = await run(process.execPath, [join(packageRoot(), 'bin/agate.js'), ...args], { timeoutMs: 30_000, env: { ...process.env, AGATE_TOKEN: '' } });
  return { status: r.code, stderr: r.stderr, stdout: r.stdout };
}

// The reader sleeps first, so agate fills the pipe's buffer and must wait for it to drain.
const SLOW = '{ sleep 1; cat; }';

out('sql --format ndjson into a slow pipe: every byte arrives, exit 0', async (ctx) => {
  const r = await piped(ctx, `sql "SELECT 1" --format ndjson`, SLOW);
  assert.is(r.status, 0, r.stderr);
  assert.ok(ctx.sql.length > 4 * 65_536, 'the answer is several pipe buffers long');
  assert.is(r.output.length, Buffer.byteLength(ctx.sql));
  assert.ok(r.output.toString('utf8') === ctx.sql, 'the output is the answer, byte for byte');
});

out('session --json into python3 -m json.tool through a slow pipe parses whole', async (ctx) => {
  const r = await piped(ctx, 'session s1 --json', '{ sleep 1; python3 -m json.tool; }');
  assert.is(r.status, 0, r.stderr);
  assert.ok(ctx.session.length > 65_536 * 2);
  assert.equal(JSON.parse(r.output.toString('utf8')), JSON.parse(ctx.session));
});

out('session (table) and sessions end with a newline, whole', async (ctx) => {
  const table = await piped(ctx, 'session s1', SLOW);
  assert.is(table.status, 0, table.stderr);
  const text = table.output.toString('utf8');
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  assert.is(text.trimEnd().split('\n').length, 2 + 1 + 1 + 800, 'two header lines, a blank one, the column names and every command');
  const list = await piped(ctx, 'sessions', SLOW);
  assert.is(list.status, 0, list.stderr);
  assert.match(list.output.toString('utf8'), /^SESSION_ID .*\ns1 .*agent.*\n$/);
});

out('usage errors exit 2 with a message, whichever command finds them', async (ctx) => {
  const cases: string[][] = [
    ['sessions', '--config', ctx.config, '--no-such-flag'],
    ['sql', '--config', ctx.config],
    ['sql', 'SELECT 1', '--config', ctx.config, '--format', 'xml', '--token', 't'],
    ['sessions', '--config', ctx.config],
    ['approvals', '--config', ctx.config, '--status', 'someday', '--token', 't'],
    ['export', '--config', ctx.config, '--to', 'nowhere', '--token', 't'],
    ['export', '--config', ctx.config, '--format', 'cef', '--to', 'ndjson', '-', '--token', 't'],
    ['verify-proof'],
    ['sessions'],
    ['frobnicate'],
    [],
  ];
  // Two at a time: each run is a fresh Node process that loads the whole CLI.
  const results: Array<{ status: number | null; stderr: string }> = [];
  for (let i = 0; i < cases.length; i += 2) results.push(...(await Promise.all(cases.slice(i, i + 2).map((args) => agate(...args)))));
  cases.forEach((args, i) => {
    assert.is(results[i]!.status, 2, `agate ${args.join(' ')}: ${results[i]!.stderr}`);
    assert.match(results[i]!.stderr, /^agate: /, `agate ${args.join(' ')} says why`);
  });
});

out('an answer the API refuses is exit 1, not a usage error', async (ctx) => {
  const r = await agate('session', 'nope', '--config', ctx.config, '--url', ctx.url, '--token', 't');
  assert.is(r.status, 1);
  assert.match(r.stderr, /API_NOT_FOUND/);
});

out.run();
