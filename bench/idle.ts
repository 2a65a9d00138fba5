/**
 * What the distributed services cost with no traffic: real `agate ledger`, `agate policy` and
 * `agate proxy` processes on a real Kafka broker, each one's CPU and the broker's (all threads,
 * from /proc/PID/stat) over a quiet window after start-up has settled, as % of one core.
 *
 *   npm run bench -- idle [--settle-s 8] [--window-s 20]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createSecretFile } from '../core/src/secret-file.js';
import { generateSignerKey } from '../services/ledger/src/note.js';
import { startKafka } from '../test/harness/kafka.js';
import { startRole, type Role, type RoleProcess } from '../test/e2e/role-process.js';

/** User plus system CPU of a process so far, in seconds (clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { 'settle-s': { type: 'string', default: '8' }, 'window-s': { type: 'string', default: '20' } } });
  const broker = await startKafka();
  const dir = mkdtempSync(join(tmpdir(), 'agate-bench-idle-'));
  const procs: [Role, RoleProcess][] = [];
  try {
    const config = (role: Role) => {
      const path = join(dir, `${role}.yaml`);
      writeFileSync(path, `instance_id: ${role}
data_dir: ${JSON.stringify(join(dir, role))}
identity: { issuers: [{ issuer: https://issuer.invalid, audience: agate }] }
bus: { kind: kafka, brokers: [${JSON.stringify(broker.bootstrap)}], partitions: 6, replication_factor: 1 }
store: { kind: embedded }
proxy: { postgres: { listen: "127.0.0.1:0" } }
`);
      return path;
    };
    createSecretFile(join(dir, 'ledger', 'ledger', 'checkpoint.key'), generateSignerKey('agate.local/ledger') + '\n');
    // AGATE_BENCH_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) profiles the Agate processes.
    const nodeArgs = (process.env.AGATE_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
    for (const role of ['ledger', 'policy', 'proxy'] as const) procs.push([role, await startRole(role, config(role), undefined, nodeArgs)]);
    await new Promise((r) => setTimeout(r, Number(values['settle-s']) * 1000));
    const before = procs.map(([, p]) => cpuSeconds(p.pid));
    const brokerBefore = cpuSeconds(broker.pid!);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, Number(values['window-s']) * 1000));
    const seconds = (performance.now() - t0) / 1000;
    console.log(`idle CPU over ${seconds.toFixed(0)} s with no traffic (all threads of each process; Kafka 4.4, one broker)\n`);
    const pct = (used: number) => `${((used / seconds) * 100).toFixed(1)} % of a core`;
    procs.forEach(([role, p], i) => console.log(`${`agate ${role}`.padEnd(14)}${pct(cpuSeconds(p.pid) - before[i]!)}`));
    console.log(`${'Kafka broker'.padEnd(14)}${pct(cpuSeconds(broker.pid!) - brokerBefore)}`);
  } finally {
    for (const [, p] of procs) await p.stop();
    await broker.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
