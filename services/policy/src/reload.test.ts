import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../core/src/config.js';
import { createLogger } from '../../../core/src/log.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { CompiledPolicy, loadParsers } from './engine.js';
import { PolicyReloader } from './reload.js';
import { untilTrue } from '../../../test/harness/until.js';

const config = (action: string, extra = '') => `identity: { dev_issuer: { enabled: true } }
policy:
  default: allow
  rules:
    - id: drops
      action: ${action}
      match: { sql: { statements: [DropStmt] } }
${extra}`;

const reload = suite('PolicyReloader');
const drop = { ...SAMPLES.Command, text: 'DROP TABLE items' };
/** The reloader polls every 20 ms; so does the test. */
const FAST = { timeoutMs: 5_000, everyMs: 10 };

reload('a valid edit replaces the policy; an invalid one is refused with a precise error and the old policy stays', async () => {
  await loadParsers();
  const dir = mkdtempSync(join(tmpdir(), 'agate-reload-'));
  const path = join(dir, 'agate.yaml');
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger('info', {}, (line) => logs.push(JSON.parse(line) as Record<string, unknown>));
  try {
    writeFileSync(path, config('deny'));
    let current = new CompiledPolicy(loadConfig(path).policy);
    const changed: string[] = [];
    const reloader = new PolicyReloader({ path, logger, intervalMs: 20, apply: (p) => { current = p; changed.push(p.revision); } });
    reloader.start(current);
    assert.is(current.evaluate(drop).decision, 'deny');

    writeFileSync(path, config('hold') + '# edited\n');
    await untilTrue('the edit applied', () => changed.length === 1, FAST);
    assert.is(current.evaluate(drop).decision, 'hold', 'the edit applies without a restart');

    // A typo in the action: refused, the error names the file, line and key.
    // (writeFileSync truncates first: a poll in between may refuse an empty file before this one.)
    writeFileSync(path, config('hodl'));
    await untilTrue('the typo refused', () => logs.some((l) => l.msg === 'policy reload rejected; the previous policy stays in force' && /agate\.yaml:6: policy\.rules\[0\]\.action: /.test(String(l.error))), FAST);
    assert.is(current.evaluate(drop).decision, 'hold', 'the previous policy stays in force');
    assert.is(changed.length, 1);

    // Broken YAML is refused the same way; reload() reports it directly too.
    writeFileSync(path, config('deny', '  - [unclosed'));
    assert.match(reloader.reload() ?? '', /not valid YAML/);
    assert.is(current.evaluate(drop).decision, 'hold');

    writeFileSync(path, config('deny'));
    await untilTrue('the fixed edit applied', () => changed.length === 2, FAST);
    assert.is(current.evaluate(drop).decision, 'deny');
    reloader.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

reload.run();
