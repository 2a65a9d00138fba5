import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../core/src/config.js';
import { mintDevToken } from '../../core/src/identity/dev-issuer.js';
import { silentLogger } from '../../core/src/log.js';
import { packageRoot } from '../../core/src/package-root.js';
import { startEmbedded, type RunningAgate } from '../../cli/src/components.js';
import type { AgateEvent } from '../../schemas/src/events.js';
import { SAMPLES } from '../../schemas/src/samples.js';
import { findFreePort } from '../harness/postgres.js';
import { run } from '../harness/proc.js';

/*
 * schemathesis (from PyPI, written by people outside this project) fuzzes the query API from its
 * OpenAPI document against a running embedded Agate whose ledger holds real events. Any 5xx is a
 * failure. The fuzzer is installed into a cache directory outside the repo when missing.
 */
const fuzz = suite('schemathesis against the query API');
let dir = '';
let agate: RunningAgate | undefined;

fuzz.after(async () => {
  await agate?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

fuzz('finds no server error', async () => {
  dir = mkdtempSync(join(tmpdir(), 'agate-fuzz-'));
  const config = parseConfig(
    `data_dir: ${dir}\nidentity: { dev_issuer: { enabled: true } }\nbus: { fsync: false }\nproxy: { postgres: { listen: 127.0.0.1:${await findFreePort()} } }\nquery: { listen: 127.0.0.1:${await findFreePort()} }\n` +
      // The fuzzer may send requests with missing or broken credentials, all from one address.
      'logins: { throttle: { max_failures: 0 } }\n',
    join(dir, 'agate.yaml'),
  );
  agate = await startEmbedded(config, silentLogger);
  // Real events through the real ledger, so routes have rows to return.
  for (let i = 0; i < 3; i++) {
    const session = randomUUID();
    const command = randomUUID();
    const events: AgateEvent[] = Object.values(SAMPLES).map((e) => ({ ...e, event_id: e.type === 'Command' ? command : randomUUID(), session_id: session, ...('command_id' in e ? { command_id: command } : {}) }) as AgateEvent);
    await agate.ledger.append(events, 'embedded');
  }
  const token = await mintDevToken(dir, { subject: 'fuzzer', audience: 'agate', ttlSeconds: 3600, claims: { agate_role: 'admin' } });
  const base = `http://127.0.0.1:${agate.api.port}`;
  const r = await run('bash', [join(packageRoot(), 'test/fuzz/run-schemathesis.sh'), base, token], { timeoutMs: 540_000 });
  const out = r.stdout + r.stderr;
  if (r.code !== 0) console.log(out.split('\n').slice(-80).map((l) => l.slice(0, 300)).join('\n'));
  assert.is(r.code, 0, 'schemathesis reported failures (output above)');
  assert.match(out, /passed/i);
  assert.not.match(out, /Server error/i);
});

fuzz.run();
