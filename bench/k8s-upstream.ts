/**
 * What the Kubernetes proxy's upstream hop costs in Node's HTTP client, against the least any
 * HTTP/1.1 client over the same kept-alive TLS connection could cost (issue 21: is a hand-written
 * client for that hop worth its risk?). Both send the `get` Agate forwards and read the answer
 * of a server in another process (k8s-upstream-server.ts, kube-apiserver's headers and a
 * ConfigMap's body), one request after another; they take turns in blocks, and each block's CPU
 * is this process's (user + system), so the server's work is not counted.
 *
 * - `node`: `https.request` through a keep-alive Agent with one pool name, as upstream.ts does;
 *   the answer read as relay.ts reads it (status, headers, body chunks, end).
 * - `bare`: one `tls.connect` socket; the request line and headers written as one string; the
 *   answer's head split at CRLFs and checked strictly (HTTP/1.1 status line, token header names,
 *   one Content-Length of digits), the body counted to its Content-Length. It handles nothing
 *   else (no chunked bodies, no errors, no pool): a lower bound, not a client.
 *
 * `npm run bench -- k8s-upstream [requests per block] [blocks]` (default 2,000 and 6).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { makeTestCa } from '../test/harness/test-ca.js';
import { startListeningChild } from './listening-child.js';

const PATH = '/api/v1/namespaces/default/configmaps/bench-0';
const HEADERS = { accept: 'application/json', 'user-agent': 'kubectl/v1.37.2 (linux/amd64) kubernetes/0000000', 'kubectl-command': 'kubectl get' };

type Get = () => Promise<number>;

export async function run(args: string[]): Promise<void> {
  const perBlock = Number(args[0] ?? 2000);
  const blocks = Number(args[1] ?? 6);
  const dir = mkdtempSync(join(tmpdir(), 'agate-k8s-upstream-'));
  const ca = await makeTestCa(dir);
  const { child, port } = await startListeningChild('the answering server', new URL('./k8s-upstream-server.js', import.meta.url).pathname, [ca.server.cert, ca.server.key]);
  const caPem = readFileSync(ca.ca);
  try {
    const clients: [string, Get][] = [['node', nodeClient(port, caPem)], ['bare', await bareClient(port, caPem)]];
    for (const [, get] of clients) for (let i = 0; i < 3000; i++) await get(); // V8 optimizes both first
    const cpu = clients.map(() => 0);
    const wall = clients.map(() => 0);
    for (let b = 0; b < blocks; b++) {
      for (let c = 0; c < clients.length; c++) {
        const k = b % 2 === 0 ? c : clients.length - 1 - c; // each goes first as often
        const get = clients[k]![1];
        const before = process.cpuUsage();
        const t = performance.now();
        for (let i = 0; i < perBlock; i++) await get();
        wall[k]! += performance.now() - t;
        const used = process.cpuUsage(before);
        cpu[k]! += used.user + used.system;
      }
    }
    const n = perBlock * blocks;
    console.log(`\nUpstream hop of a get: this process's CPU per request, ${n} requests each in ${blocks} alternating blocks (load average ${loadavg().map((l) => l.toFixed(1)).join(' / ')})\n`);
    console.log('| client | CPU µs per get | wall µs per get |');
    console.log('|---|---:|---:|');
    clients.forEach(([name], k) => console.log(`| ${name} | ${(cpu[k]! / n).toFixed(1)} | ${((wall[k]! * 1000) / n).toFixed(1)} |`));
  } finally {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

function nodeClient(port: number, ca: Buffer): Get {
  const agent = new (class extends Agent {
    override getName(): string {
      return 'upstream';
    }
  })({ ca, keepAlive: true, maxFreeSockets: 64, rejectUnauthorized: true });
  return () =>
    new Promise((resolve, reject) => {
      const up = request({ host: '127.0.0.1', port, method: 'GET', path: PATH, agent, headers: HEADERS });
      up.on('error', reject);
      up.on('response', (res) => {
        let bytes = 0;
        if (res.statusCode !== 200 || res.headers['content-type'] === undefined) reject(new Error(`HTTP ${res.statusCode}`));
        res.on('data', (chunk: Buffer) => (bytes += chunk.length));
        res.on('end', () => resolve(bytes));
      });
      up.end();
    });
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\0\r\n]/;

async function bareClient(port: number, ca: Buffer): Promise<Get> {
  const socket: TLSSocket = connect({ host: '127.0.0.1', port, ca, rejectUnauthorized: true, ALPNProtocols: ['http/1.1'] });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  const head = `GET ${PATH} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${Object.entries(HEADERS).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  let waiting: { resolve: (n: number) => void; reject: (e: Error) => void; left: number | undefined; bytes: number } | undefined;
  let held: Buffer | undefined;
  socket.on('data', (chunk: Buffer) => {
    const w = waiting!;
    let data = held === undefined ? chunk : Buffer.concat([held, chunk]);
    held = undefined;
    if (w.left === undefined) {
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return void (held = data);
      const lines = data.toString('latin1', 0, end).split('\r\n');
      if (!/^HTTP\/1\.1 200 [^\r\n]*$/.test(lines[0]!)) return w.reject(new Error(`status line ${lines[0]}`));
      const raw: string[] = [];
      let length: number | undefined;
      for (let i = 1; i < lines.length; i++) {
        const line = lines[i]!;
        const colon = line.indexOf(':');
        const name = line.slice(0, colon);
        const value = line.slice(colon + 1).trim();
        if (colon <= 0 || !TOKEN.test(name) || BAD_VALUE.test(value)) return w.reject(new Error('bad header'));
        if (name.length === 14 && name.toLowerCase() === 'content-length') {
          if (length !== undefined || !/^\d{1,15}$/.test(value)) return w.reject(new Error('bad content-length'));
          length = Number(value);
        }
        raw.push(name, value);
      }
      if (length === undefined) return w.reject(new Error('no content-length'));
      w.left = length;
      data = data.subarray(end + 4);
    }
    w.left -= data.length;
    w.bytes += data.length;
    if (w.left === 0) {
      waiting = undefined;
      w.resolve(w.bytes);
    }
  });
  return () =>
    new Promise((resolve, reject) => {
      waiting = { resolve, reject, left: undefined, bytes: 0 };
      socket.write(head);
    });
}
