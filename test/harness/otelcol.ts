// A real OpenTelemetry Collector on loopback: the OTLP/HTTP receiver feeding the debug exporter at
// detailed verbosity, built by install-otelcol.sh into ~/.cache/agate/otelcol-<v>/bin. The test
// reads the spans the collector received from what the debug exporter prints.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInstaller } from './installer.js';
import { findFreePort } from './postgres.js';
import { unrefChild } from './proc.js';

/** One span as the debug exporter prints it. */
export interface ReceivedSpan {
  service: string;
  traceId: string;
  /** Empty for a root span. */
  parentId: string;
  spanId: string;
  name: string;
  kind: string;
  status: string;
  attributes: Record<string, string>;
}

export interface Collector {
  /** The OTLP/HTTP base URL (`/v1/traces` is appended by exporters). */
  endpoint: string;
  /** Every span received so far, in arrival order. */
  spans(): ReceivedSpan[];
  /** Resolves once `accept` holds for the spans received, or rejects with what arrived. */
  waitFor(accept: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

/** Builds the collector when missing (minutes cold; progress on stderr); returns the bin directory. */
async function installCollector(): Promise<string> {
  return runInstaller('install-otelcol.sh');
}

export async function startCollector(opts: { readyTimeoutMs?: number } = {}): Promise<Collector> {
  const bin = join(await installCollector(), 'otelcol');
  const dir = mkdtempSync(join(tmpdir(), 'agate-otelcol-'));
  const port = await findFreePort();
  writeFileSync(join(dir, 'config.yaml'), [
    'receivers:',
    '  otlp:',
    '    protocols:',
    '      http:',
    `        endpoint: 127.0.0.1:${port}`,
    'exporters:',
    '  debug:',
    '    verbosity: detailed',
    'service:',
    '  telemetry:',
    '    metrics:',
    '      level: none',
    '  pipelines:',
    '    traces:',
    '      receivers: [otlp]',
    '      exporters: [debug]',
    '',
  ].join('\n'));
  const child = spawn(bin, ['--config', `file:${join(dir, 'config.yaml')}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const onData = (d: string) => (output += d);
  child.stdout!.setEncoding('utf8').on('data', onData);
  child.stderr!.setEncoding('utf8').on('data', onData);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      // Held by the event loop while it stops (it was unref'd while running): uvu must not exit meanwhile.
      child.ref();
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5_000)))]);
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', () => child.kill('SIGKILL'));
  try {
    await waitForOutput(child, () => output, 'Everything is ready', opts.readyTimeoutMs ?? 120_000);
  } catch (err) {
    await stop();
    throw err;
  }
  unrefChild(child);
  const spans = () => parseDebugSpans(output);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    async waitFor(accept, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const now = spans();
        if (accept(now)) return now;
        if (Date.now() > deadline) throw new Error(`the collector did not receive the expected spans within ${timeoutMs} ms; it has: ${JSON.stringify(now.map((s) => `${s.service} ${s.name} ${s.traceId}/${s.parentId}->${s.spanId}`))}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    close: stop,
  };
}

function waitForOutput(child: ChildProcess, output: () => string, marker: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (output().includes(marker)) return done();
      if (child.exitCode !== null || Date.now() > deadline) done(new Error(`the collector did not start (${child.exitCode === null ? `no "${marker}" within ${timeoutMs} ms` : `exit ${child.exitCode}`}); its output:\n${output()}`));
    }, 100);
    const deadline = Date.now() + timeoutMs;
    const done = (err?: Error) => (clearInterval(timer), err === undefined ? resolve() : reject(err));
  });
}

/**
 * The spans in the debug exporter's detailed output: each `ResourceSpans #n` block names the
 * resource's attributes (service.name), then `Span #n` blocks of `Key : value` lines and an
 * `Attributes:` list of `-> key: Type(value)` lines.
 */
function parseDebugSpans(output: string): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  let service = '';
  let span: ReceivedSpan | undefined;
  let inSpanAttributes = false;
  for (const raw of output.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.includes('ResourceSpans #')) {
      span = undefined;
      service = '';
      continue;
    }
    const attr = /^\s+-> ([^:]+): \w+\((.*)\)$/.exec(line);
    if (attr !== null) {
      if (span === undefined && attr[1] === 'service.name') service = attr[2]!;
      else if (span !== undefined && inSpanAttributes) span.attributes[attr[1]!] = attr[2]!;
      continue;
    }
    if (/^Span #\d+/.test(line)) {
      span = { service, traceId: '', parentId: '', spanId: '', name: '', kind: '', status: '', attributes: {} };
      out.push(span);
      inSpanAttributes = false;
      continue;
    }
    if (span === undefined) continue;
    if (/^Attributes:/.test(line)) {
      inSpanAttributes = true;
      continue;
    }
    const field = /^\s+([A-Za-z ]+?)\s*: (.*)$/.exec(line);
    if (field === null) continue;
    inSpanAttributes = false;
    const value = field[2]!.trim();
    switch (field[1]) {
      case 'Trace ID': span.traceId = value; break;
      case 'Parent ID': span.parentId = value; break;
      case 'ID': span.spanId = value; break;
      case 'Name': span.name = value; break;
      case 'Kind': span.kind = value; break;
      case 'Status code': span.status = value; break;
    }
  }
  return out;
}
