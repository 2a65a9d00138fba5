import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * Every statement node name (`…Stmt`) in the type definitions of the libpg-query installed, read
 * from `@pgsql/types` at run time: tests use it to prove each one is classified and exercised.
 */
export function knownStatementNodes(): string[] {
  const require = createRequire(import.meta.url);
  const fromLibpgQuery = createRequire(require.resolve('libpg-query'));
  const types = readFileSync(join(dirname(fromLibpgQuery.resolve('@pgsql/types/package.json')), 'types.d.ts'), 'utf8');
  return [...new Set([...types.matchAll(/^export interface (\w+Stmt) \{/gm)].map((m) => m[1]!))].sort();
}
