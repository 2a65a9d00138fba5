import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { ConfigError, type AgateError } from '../../../../core/src/errors.js';
import type { AgateConfig } from '../../../../core/src/config.js';
import { Masker } from './masking/masker.js';
import type { RecordingOptions } from './result-recorder.js';

/** The parts of the PostgreSQL proxy's dependencies that come straight from configuration. */
export interface PgProxyConfigDeps {
  recording: RecordingOptions;
  maskers: ReadonlyMap<string, Masker>;
  tls?: SecureContext;
}

/** Compiles the mask sets and loads the TLS certificate once, at start; a bad file fails start. */
export function pgProxyConfigDeps(config: AgateConfig): PgProxyConfigDeps {
  const maskers = new Map(Object.entries(config.masking.sets).map(([name, set]) => [name, new Masker(name, set)]));
  const audit = maskers.get(config.masking.audit)!; // parseConfig checked the name
  const { record_rows, record_value_chars, tls } = config.proxy.postgres;
  const deps: PgProxyConfigDeps = { recording: { sampleRows: record_rows, valueChars: record_value_chars, audit }, maskers };
  if (tls !== undefined) {
    try {
      deps.tls = createSecureContext({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) });
    } catch (cause) {
      throw new ConfigError(`${config.source}: proxy.postgres.tls: cannot load the certificate or key: ${(cause as AgateError).message}`, { cause });
    }
  }
  return deps;
}

/** The mask set a target's clients receive their results through: `true` means the audit set. */
export function targetMaskSet(config: AgateConfig, maskClient: boolean | string): string | undefined {
  if (maskClient === false) return undefined;
  return maskClient === true ? config.masking.audit : maskClient;
}
