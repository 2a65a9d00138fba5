// Debian's real clickhouse-server (18.16) on loopback, with its own config and data directory.
// Too old for Agate's schema (no DateTime64, no query parameters, no skip indexes): tests use it
// to prove the HTTP transport of the server store, and that Agate's migration fails clearly.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findFreePort } from './postgres.js';
import { runInstaller } from './installer.js';

export interface ClickHouseServer {
  /** `https://127.0.0.1:PORT` when started with `tls`. */
  httpsUrl?: string;
  url: string;
  close(): Promise<void>;
}

/** With `tls`, the server also serves HTTPS with this certificate and key (PEM files) at `httpsUrl`. */
export async function startClickHouseServer(readyTimeoutMs = 120_000, tls?: { cert: string; key: string }): Promise<ClickHouseServer> {
  await runInstaller('install-clickhouse.sh', { timeoutMs: 10 * 60_000, quiet: true });
  const dir = mkdtempSync(join(tmpdir(), 'agate-clickhouse-'));
  for (const d of ['data', 'tmp', 'user_files', 'format_schemas']) mkdirSync(join(dir, d));
  const [http, tcp, https] = [await findFreePort(), await findFreePort(), await findFreePort()];
  const httpsConfig = tls === undefined ? '' : `  <https_port>${https}</https_port>
  <openSSL><server><certificateFile>${tls.cert}</certificateFile><privateKeyFile>${tls.key}</privateKeyFile><verificationMode>none</verificationMode><loadDefaultCAFile>false</loadDefaultCAFile><cacheSessions>true</cacheSessions><disableProtocols>sslv2,sslv3</disableProtocols><preferServerCiphers>true</preferServerCiphers></server></openSSL>
`;
  writeFileSync(join(dir, 'users.xml'), `<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`);
  writeFileSync(join(dir, 'config.xml'), `<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <http_port>${http}</http_port>
  <tcp_port>${tcp}</tcp_port>
${httpsConfig}  <listen_host>127.0.0.1</listen_host>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>${dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>536870912</mark_cache_size>
</yandex>
`);
  let output = '';
  const child: ChildProcess = spawn('/usr/sbin/clickhouse-server', [`--config-file=${join(dir, 'config.xml')}`], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-10_000)));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-10_000)));
  const url = `http://127.0.0.1:${http}`;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`clickhouse-server exited with ${child.exitCode}:\n${output.slice(-3000)}`);
    try {
      if ((await fetch(`${url}/ping`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`clickhouse-server did not answer on ${url} within ${readyTimeoutMs} ms:\n${output.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  process.once('exit', () => child.kill('SIGKILL'));
  return {
    url,
    ...(tls === undefined ? {} : { httpsUrl: `https://127.0.0.1:${https}` }),
    close: async () => {
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await gone;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
