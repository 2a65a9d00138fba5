// A real Confluent-compatible schema registry: Apicurio Registry 3.x (in-memory storage) on
// loopback. 3.3.x needs Java 21 or newer; the harness uses a Temurin JDK under /usr/lib/jvm.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { findFreePort } from './postgres.js';
import { runInstaller } from './installer.js';
import { unrefChild } from './proc.js';

export interface SchemaRegistryServer {
  /** Base URL of the Confluent-compatible API. */
  url: string;
  close(): Promise<void>;
}

/** A `java` of major version 21+: $AGATE_JAVA21, else the newest JDK under /usr/lib/jvm. */
function modernJava(): string {
  if (process.env.AGATE_JAVA21) return process.env.AGATE_JAVA21;
  const jvm = '/usr/lib/jvm';
  const candidates = existsSync(jvm) ? readdirSync(jvm).filter((d) => /(2[1-9]|[3-9]\d)/.test(d) && existsSync(join(jvm, d, 'bin', 'java'))) : [];
  if (candidates.length === 0) throw new Error('Apicurio Registry 3.3 needs Java 21+: none found under /usr/lib/jvm (set AGATE_JAVA21 to a java binary)');
  return join(jvm, candidates.sort().pop()!, 'bin', 'java');
}

export async function startSchemaRegistry(readyTimeoutMs = 180_000): Promise<SchemaRegistryServer> {
  const home = await runInstaller('install-registry.sh', { timeoutMs: 15 * 60_000, quiet: true });
  const port = await findFreePort();
  // Apicurio also opens Quarkus's management interface (health, metrics), by default on 0.0.0.0:9000:
  // a fixed port two registries on one machine fight over, and not loopback. Give it its own.
  const managementPort = await findFreePort();
  let output = '';
  const child: ChildProcess = spawn(modernJava(), ['-Xmx384m', `-Dquarkus.http.port=${port}`, '-Dquarkus.http.host=127.0.0.1', `-Dquarkus.management.port=${managementPort}`, '-Dquarkus.management.host=127.0.0.1', '-Dquarkus.log.level=WARN', '-Dquarkus.http.access-log.enabled=false', '-jar', join(home, 'quarkus-run.jar')], { cwd: home, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-10_000)));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-10_000)));
  const url = `http://127.0.0.1:${port}/apis/ccompat/v7`;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the schema registry exited with ${child.exitCode}:\n${output.slice(-3000)}`);
    try {
      if ((await fetch(`${url}/subjects`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the schema registry did not answer at ${url} within ${readyTimeoutMs} ms:\n${output.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  process.once('exit', () => child.kill('SIGKILL'));
  unrefChild(child);
  return {
    url,
    close: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await gone;
      clearTimeout(t);
    },
  };
}
