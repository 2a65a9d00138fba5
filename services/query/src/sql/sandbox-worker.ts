/**
 * The process analyst SQL runs in when the store is the embedded engine: started by sandbox.ts
 * inside its own user, mount, PID, network, IPC and UTS namespaces, where the only files are the
 * system's libraries, the engine's package and a copy-on-write view of the store. It opens the
 * store, answers the requests it reads from stdin, and exits when stdin ends.
 *
 * It is copied alone into the sandbox, so it imports nothing from Agate: node built-ins only, and
 * the engine by the absolute path it is given.
 *
 * Protocol. Request, one JSON line on stdin: `{"sql": "…", "params": {…}}`. Reply on stdout, a
 * header line then, when `ok`, exactly `length` bytes of JSONEachRow:
 *   {"ok":true,"length":N}\n<N bytes>   or   {"ok":false,"message":"…","code":241}\n
 * The first reply, before any request, says whether the store opened (`length` 0).
 */
import { createInterface } from 'node:readline';

interface Reply {
  ok: boolean;
  length?: number;
  message?: string;
  code?: number;
}

const [storePath, chdbEntry, userFiles] = process.argv.slice(2) as [string, string, string];

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

const { Session } = (await import(chdbEntry)) as typeof import('chdb');
let session: InstanceType<typeof Session>;
try {
  session = new Session(storePath, { connectionArgs: [`--user_files_path=${userFiles}`] });
} catch (err) {
  await send(failure(err));
  process.exit(1);
}
await send({ ok: true, length: 0 });

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  try {
    const { sql, params } = JSON.parse(line) as { sql: string; params?: Record<string, unknown> };
    const bytes = (await session.queryBindAsync(sql, params ?? {}, { format: 'JSONEachRow' })).bytes();
    await send({ ok: true, length: bytes.byteLength }, bytes);
  } catch (err) {
    await send(failure(err));
  }
}
session.close();
