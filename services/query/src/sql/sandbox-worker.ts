/**
 * The process analyst SQL runs in when the store is the embedded engine: started by sandbox.ts
 * inside its own user, mount, PID, network, IPC and UTS namespaces, where the only files are the
 * system's libraries, the engine's package, the real store (read-only, at `/.store`) and an empty
 * private store directory (tmpfs). It loads the engine first, so that a worker started ahead
 * waits ready; then it reads the store plan, builds its view of the store in the private
 * directory (table definitions copied, active parts linked), opens it, answers the requests it
 * reads from stdin, and exits when stdin ends.
 *
 * It is copied alone into the sandbox, so it imports nothing from Agate: node built-ins only, and
 * the engine by the absolute path it is given.
 *
 * Protocol. First line on stdin: the plan, `{"copies": ["metadata", …], "tables": [["store/…", ["all_1_1_0", …]], …]}`
 * (paths relative to the store). Then requests, one JSON line each: `{"sql": "…", "params": {…}}`.
 * Reply on stdout, a header line then, when `ok`, exactly `length` bytes of JSONEachRow:
 *   {"ok":true,"length":N}\n<N bytes>   or   {"ok":false,"message":"…","code":241}\n
 * The first reply, to the plan, says whether the store opened (`length` 0).
 */
import { cpSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

interface Reply {
  ok: boolean;
  length?: number;
  message?: string;
  code?: number;
}

interface Plan {
  copies: string[];
  tables: [string, string[]][];
}

const [storePath, chdbEntry, userFiles, realStore] = process.argv.slice(2) as [string, string, string, string];

function send(reply: Reply, body?: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(JSON.stringify(reply) + '\n');
    process.stdout.write(body ?? new Uint8Array(0), (err) => (err ? reject(err) : resolve()));
  });
}

function failure(err: unknown): Reply {
  const e = err as { message?: unknown; clickhouseCode?: unknown; cause?: { message?: unknown } };
  const message = String(e.message ?? err);
  const inner = e.cause?.message === undefined ? '' : String(e.cause.message);
  return { ok: false, message: inner.length > 0 && !message.includes(inner) ? `${message}: ${inner}` : message, ...(typeof e.clickhouseCode === 'number' ? { code: e.clickhouseCode } : {}) };
}

/** The engine's view of the store: definitions copied (links kept as written), parts linked. */
function buildView(plan: Plan): void {
  for (const path of plan.copies) cpSync(join(realStore, path), join(storePath, path), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  for (const [dir, parts] of plan.tables) {
    mkdirSync(join(storePath, dir), { recursive: true });
    for (const part of parts) symlinkSync(join(realStore, dir, part), join(storePath, dir, part));
  }
}

const { Session } = (await import(chdbEntry)) as typeof import('chdb');
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })[Symbol.asyncIterator]();
const first = await lines.next();
if (first.done === true) process.exit(0);
let session: InstanceType<typeof Session>;
try {
  buildView(JSON.parse(first.value as string) as Plan);
  session = new Session(storePath, { connectionArgs: [`--user_files_path=${userFiles}`] });
} catch (err) {
  await send(failure(err));
  process.exit(1);
}
await send({ ok: true, length: 0 });

for (let next = await lines.next(); next.done !== true; next = await lines.next()) {
  const line = next.value as string;
  try {
    const { sql, params } = JSON.parse(line) as { sql: string; params?: Record<string, unknown> };
    const bytes = (await session.queryBindAsync(sql, params ?? {}, { format: 'JSONEachRow' })).bytes();
    await send({ ok: true, length: bytes.byteLength }, bytes);
  } catch (err) {
    await send(failure(err));
  }
}
session.close();
