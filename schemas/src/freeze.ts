/**
 * Freezes the current schemas as a new golden version:
 *   node dist/schemas/src/freeze.js v2
 * writes schemas/golden/v2/<Event>.avsc, .json (the sample) and .bin (its encoding).
 * Run it whenever a schema changes; the compatibility test then guards every frozen version.
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventCodec } from './codec.js';
import { EVENT_TYPES } from './events.js';
import { schemasDir } from './registry.js';
import { SAMPLES } from './samples.js';

const version = process.argv[2];
if (version === undefined || !/^v\d+$/.test(version)) {
  console.error('usage: freeze.js vN');
  process.exit(2);
}
const dir = join(schemasDir(), 'golden', version);
if (existsSync(dir)) {
  console.error(`${dir} exists; golden versions are immutable`);
  process.exit(1);
}
mkdirSync(dir, { recursive: true });
const codec = new EventCodec();
for (const t of EVENT_TYPES) {
  copyFileSync(join(schemasDir(), `${t}.avsc`), join(dir, `${t}.avsc`));
  writeFileSync(join(dir, `${t}.json`), JSON.stringify(SAMPLES[t], null, 2) + '\n');
  writeFileSync(join(dir, `${t}.bin`), codec.encode(SAMPLES[t]));
}
console.log(`froze ${EVENT_TYPES.length} schemas into ${dir}`);
