import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../../../core/src/package-root.js';

/** The OCSF schema version Agate's events follow. */
export const OCSF_VERSION = '1.3.0';

const version = (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;

/** `metadata.product` of every event. */
export const PRODUCT = Object.freeze({ name: 'Agate', vendor_name: 'Agate', version });
