/**
 * `npm run bench -- pg [--seconds N] [--stream-gb N]`: benchmarks that are not tests. They print
 * figures and never assert timings; record them in BENCHMARKS.md with the command that made them.
 */
import { benchPg } from './pg.js';

const [suite, ...args] = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(args[i + 1]);
};

switch (suite) {
  case 'pg':
    await benchPg({ seconds: option('seconds', 15), streamGb: option('stream-gb', 2), clients: option('clients', 8) });
    break;
  default:
    console.error('usage: npm run bench -- pg [--seconds N] [--clients N] [--stream-gb N]');
    process.exit(2);
}
