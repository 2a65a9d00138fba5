import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { ConfigError, type AgateError } from '../../../../core/src/errors.js';
import type { AgateConfig } from '../../../../core/src/config.js';
import type { MaskSets } from '../masking/mask-sets.js';
import type { Masker } from '../masking/masker.js';
import type { RecordingOptions } from './result-recorder.js';

/** The parts of the PostgreSQL proxy's dependencies that come straight from configuration. */
export interface PgProxyConfigDeps {
  recording: RecordingOptions;
  maskers: ReadonlyMap<string, Masker>;
  tls?: SecureContext;
}

/** Loads the TLS certificate once, at start (a bad file fails start), beside the mask sets compiled for every protocol. */
export function pgProxyConfigDeps(config: AgateConfig, masks: MaskSets): PgProxyConfigDeps {
  const { record_rows, record_value_chars, tls } = config.proxy.postgres;
  const deps: PgProxyConfigDeps = { recording: { sampleRows: record_rows, valueChars: record_value_chars, audit: masks.audit }, maskers: masks.byName };
  if (tls !== undefined) {
    try {
      deps.tls = createSecureContext({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) });
    } catch (cause) {
      throw new ConfigError(`${config.source}: proxy.postgres.tls: cannot load the certificate or key: ${(cause as AgateError).message}`, { cause });
    }
  }
  return deps;
}
