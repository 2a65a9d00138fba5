// The OCSF conformance check used by tests: events go to test/harness/ocsf-validate.py, which
// validates them against the official OCSF 1.3.0 schema with pydantic-ocsf (installed into a
// cached virtualenv by install-ocsf-validator.sh). Nothing here decides validity itself.
import { join } from 'node:path';
import { packageRoot } from '../../core/src/package-root.js';
import { run } from './proc.js';

interface OcsfVerdict {
  index: number;
  class_uid: number;
  errors: string[];
}

let python: Promise<string> | undefined;

function validatorPython(): Promise<string> {
  python ??= run('bash', [join(packageRoot(), 'test/harness/install-ocsf-validator.sh')], { timeoutMs: 300_000 }).then((r) => {
    if (r.code !== 0) throw new Error(`install-ocsf-validator.sh failed (${r.code}): ${r.stderr}`);
    return r.stdout.trim();
  });
  return python;
}

/** One verdict per event, in order; `errors` is empty for a valid event. */
async function validateOcsf(events: readonly object[]): Promise<OcsfVerdict[]> {
  const py = await validatorPython();
  const r = await run(py, [join(packageRoot(), 'test/harness/ocsf-validate.py')], { input: events.map((e) => JSON.stringify(e)).join('\n') + '\n', timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`the OCSF validator failed (${r.code}): ${r.stderr}`);
  const verdicts = r.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as OcsfVerdict);
  if (verdicts.length !== events.length) throw new Error(`the OCSF validator answered ${verdicts.length} of ${events.length} events: ${r.stderr}`);
  return verdicts;
}

/** The invalid events' errors, keyed `index (class)`: an empty object when every event is valid. */
export async function ocsfErrors(events: readonly object[]): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const v of await validateOcsf(events)) if (v.errors.length > 0) out[`${v.index} (${v.class_uid})`] = v.errors;
  return out;
}
