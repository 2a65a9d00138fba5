import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { ClientTlsConfig } from './config.js';
import { ConfigError } from './errors.js';

/** The PEM files of a `tls` section, read once at start; a missing file names its key. */
interface ClientTlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
}

export function readClientTls(cfg: ClientTlsConfig, section: string): ClientTlsMaterial {
  const read = (key: 'ca' | 'cert' | 'key'): Buffer | undefined => {
    const path = cfg[key];
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (cause) {
      throw new ConfigError(`${section}.${key}: cannot read ${path}: ${(cause as Error).message}`, { cause });
    }
  };
  return { ca: read('ca'), cert: read('cert'), key: read('key'), servername: cfg.server_name };
}

/** A server's certificate and key (PEM files), read at start; undefined when not configured. */
export function readServerTls(cfg: { cert: string; key: string } | undefined, section: string): { cert: Buffer; key: Buffer } | undefined {
  if (cfg === undefined) return undefined;
  const m = readClientTls(cfg, section);
  return { cert: m.cert!, key: m.key! };
}

/** Node TLS client options: the server's certificate and name are always verified. */
export function tlsConnectionOptions(m: ClientTlsMaterial): ConnectionOptions {
  return {
    rejectUnauthorized: true,
    ...(m.ca === undefined ? {} : { ca: m.ca }),
    ...(m.cert === undefined ? {} : { cert: m.cert, key: m.key }),
    ...(m.servername === undefined ? {} : { servername: m.servername }),
  };
}
