// A real Kafka 4.x broker in KRaft mode (combined broker + controller, replication factor 1) on
// loopback, from Maven Central jars cached outside the repository by install-kafka.sh.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { findFreePort } from './postgres.js';
import { runInstaller } from './installer.js';
import { run, unrefChild } from './proc.js';

export interface KafkaBroker {
  /** `127.0.0.1:PORT` for clients. */
  bootstrap: string;
  /** With `secure`: `127.0.0.1:PORT` of the SASL_SSL listener (SCRAM-SHA-512 and -256 over TLS). */
  secureBootstrap?: string;
  dir: string;
  /** The broker's process id while it runs (to measure it). */
  readonly pid: number | undefined;
  /** Stops the broker (SIGTERM, or SIGKILL with `hard`), keeping its data for a restart. */
  stop(opts?: { hard?: boolean }): Promise<void>;
  /** Starts it again on the same port and data. */
  restart(): Promise<void>;
  /** Stops it and removes its data. */
  destroy(): Promise<void>;
  log(): string;
}

async function installKafka(): Promise<string> {
  return runInstaller('install-kafka.sh', { timeoutMs: 15 * 60_000, quiet: true });
}

function waitForPort(port: number, deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => (s.destroy(), resolve()));
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listens on 127.0.0.1:${port}`));
        else setTimeout(attempt, 200);
      });
    };
    attempt();
  });
}

/**
 * A random cluster id in Kafka's form (16 bytes, base64url). One in 64 of those starts with '-',
 * which the storage tool's argument parser reads as an option; Kafka's own generator redraws
 * those, and so does this one.
 */
/** SCRAM credentials are written into the metadata log when the storage is formatted (KRaft). */
function scramArgs(secure: SecureListener | undefined): string[] {
  if (secure === undefined) return [];
  return Object.entries(secure.scramUsers).flatMap(([name, password]) => ['SCRAM-SHA-512', 'SCRAM-SHA-256'].flatMap((m) => ['--add-scram', `${m}=[name=${name},password=${password}]`]));
}

export function kafkaClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

interface SecureListener {
  /** PEM files of the broker's certificate and its (unencrypted PKCS#8) key. */
  cert: string;
  key: string;
  /** SCRAM users created at format time: name → password. */
  scramUsers: Record<string, string>;
}

export async function startKafka(opts: { readyTimeoutMs?: number; secure?: SecureListener } = {}): Promise<KafkaBroker> {
  try {
    return await launchKafka(opts);
  } catch (err) {
    // Most suites start the broker in a before hook, and uvu prints nothing of an error thrown
    // there (only "0 / N"): say here why the broker did not start.
    process.stderr.write(`startKafka: the broker did not start: ${(err as Error).stack ?? String(err)}\n`);
    throw err;
  }
}

async function launchKafka(opts: { readyTimeoutMs?: number; secure?: SecureListener }): Promise<KafkaBroker> {
  const lib = await installKafka();
  const dir = mkdtempSync(join(tmpdir(), 'agate-kafka-'));
  const port = await findFreePort();
  const controllerPort = await findFreePort();
  const securePort = opts.secure === undefined ? undefined : await findFreePort();
  const props = join(dir, 'server.properties');
  let secureProps: string[] = [];
  if (opts.secure !== undefined) {
    const keystore = join(dir, 'broker-keystore.pem');
    writeFileSync(keystore, readFileSync(opts.secure.key, 'utf8') + readFileSync(opts.secure.cert, 'utf8'));
    secureProps = [
      'sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256',
      'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
      'listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
      'ssl.keystore.type=PEM',
      `ssl.keystore.location=${keystore}`,
    ];
  }
  const secureListener = securePort === undefined ? '' : `,SASL_SSL://127.0.0.1:${securePort}`;
  writeFileSync(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port}${secureListener},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}${secureListener}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL',
      ...secureProps,
      `log.dirs=${join(dir, 'data')}`,
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=4',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      'auto.create.topics.enable=false',
      'num.partitions=1',
    ].join('\n') + '\n',
  );
  const log4j = join(dir, 'log4j2.properties');
  writeFileSync(log4j, ['rootLogger.level=WARN', 'rootLogger.appenderRef.out.ref=out', 'appender.out.type=Console', 'appender.out.name=out', 'appender.out.layout.type=PatternLayout', 'appender.out.layout.pattern=%d %p %c{1} %m%n'].join('\n') + '\n');
  const cp = `${lib}/*`;
  const fmt = await run('java', ['-cp', cp, `-Dlog4j2.configurationFile=${log4j}`, 'kafka.tools.StorageTool', 'format', '--config', props, `--cluster-id=${kafkaClusterId()}`, ...scramArgs(opts.secure)], { timeoutMs: 120_000 });
  if (fmt.code !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`formatting Kafka storage failed:\n${fmt.stdout}${fmt.stderr}`.slice(-3000));
  }
  let child: ChildProcess | undefined;
  let output = '';
  const launch = async () => {
    output = '';
    child = spawn('java', ['-Xmx512m', '-Xms256m', '-cp', cp, `-Dlog4j2.configurationFile=${log4j}`, 'kafka.Kafka', props], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-20_000)));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-20_000)));
    const exited = new Promise<never>((_, reject) => child!.once('exit', (code) => reject(new Error(`Kafka exited with ${code} during startup:\n${output.slice(-3000)}`))));
    try {
      await Promise.race([waitForPort(port, Date.now() + (opts.readyTimeoutMs ?? 120_000)), exited]);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    exited.catch(() => undefined);
    unrefChild(child);
  };
  const stop = async ({ hard = false } = {}) => {
    const c = child;
    if (c === undefined || c.exitCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill(hard ? 'SIGKILL' : 'SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 20_000);
    await gone;
    clearTimeout(timer);
  };
  await launch();
  process.once('exit', () => child?.kill('SIGKILL'));
  return {
    bootstrap: `127.0.0.1:${port}`,
    ...(securePort === undefined ? {} : { secureBootstrap: `127.0.0.1:${securePort}` }),
    dir,
    get pid() {
      return child?.pid;
    },
    stop,
    restart: launch,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    log: () => output,
  };
}

