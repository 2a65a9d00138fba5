/**
 * `npm run bench -- NAME`: runs one benchmark and prints its figures. Benchmarks compare
 * configurations side by side in one run; they are never unit tests.
 */
const benches: Record<string, () => Promise<{ run(args: string[]): Promise<void> }>> = {
  pipeline: () => import('./pipeline.js'),
  'verdict-send': () => import('./verdict-send.js'),
  idle: () => import('./idle.js'),
  query: () => import('./query.js'),
  'analyst-sql': () => import('./analyst-sql.js'),
  ledger: () => import('./ledger.js'),
  pg: () => import('./pg.js'),
  'pg-path': () => import('./pg-path.js'),
  'pg-gc': () => import('./pg-gc.js'),
  'pg-mem': () => import('./pg-mem.js'),
  policy: () => import('./policy.js'),
  k8s: () => import('./k8s.js'),
  'k8s-upstream': () => import('./k8s-upstream.js'),
  ssh: () => import('./ssh.js'),
  buslog: () => import('./buslog.js'),
  scaleout: () => import('./scaleout.js'),
};

const [name, ...args] = process.argv.slice(2);
const load = name === undefined ? undefined : benches[name];
if (load === undefined) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}> [options]`);
  process.exit(2);
}
await (await load()).run(args);
process.exit(0);
