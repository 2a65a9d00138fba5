/**
 * `npm run bench -- NAME`: runs one benchmark suite. Each lives in its own module exporting `run(args)`.
 */
const SUITES: Record<string, () => Promise<{ run(args: string[]): Promise<void> }>> = {
  query: () => import('./query.js'),
};

const [name, ...args] = process.argv.slice(2);
const load = name === undefined ? undefined : SUITES[name];
if (load === undefined) {
  console.error(`usage: npm run bench -- <${Object.keys(SUITES).join('|')}> [options]`);
  process.exit(2);
}
await (await load()).run(args);
