// A stand-in for a kubelet's streaming API, for exec through a real kube-apiserver where no
// kubelet or container runtime exists. The API server finds it as a Node (InternalIP 127.0.0.1,
// its port as the kubelet endpoint, `ExtendWebSocketsToKubelet` declared, so the API server
// proxies the client's WebSocket to it as it would to a kubelet of 1.36+). An exec runs the
// command as a local process (no container): stdin from channel 0 (ended by the v5 close
// channel), stdout and stderr to channels 1 and 2, the exit as a Status on channel 3. What it
// received is kept: the witness of what reached the "pod".
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { channelFrame, wsFrame } from './ws-frame.js';

interface StubExec {
  path: string;
  command: string[];
  protocol: string;
  /** The bytes the process read on stdin. */
  stdin: Buffer;
  exitCode: number | null;
  /** Set once the exec ended. */
  done: boolean;
}

export interface StubKubelet {
  port: number;
  execs: StubExec[];
  close(): Promise<void>;
}

const SUPPORTED = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];

/** `tls`: a certificate for 127.0.0.1 the API server trusts for kubelets (`--kubelet-certificate-authority`). */
export async function startStubKubelet(tls: { certFile: string; keyFile: string }): Promise<StubKubelet> {
  const execs: StubExec[] = [];
  const sockets = new Set<Socket>();
  const children = new Set<ChildProcess>();
  const server: Server = createServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }, (_req, res) => {
    res.writeHead(404).end();
  });
  server.on('upgrade', (req, socket: Socket, head: Buffer) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const url = new URL(req.url ?? '/', 'https://stub');
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    const protocol = SUPPORTED.find((p) => offered.includes(p));
    const command = url.searchParams.getAll('command');
    if (!url.pathname.startsWith('/exec/') || protocol === undefined || command.length === 0) {
      socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      return;
    }
    const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`);
    const exec: StubExec = { path: url.pathname, command, protocol, stdin: Buffer.alloc(0), exitCode: null, done: false };
    execs.push(exec);
    const child = spawn(command[0]!, command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    child.on('error', () => {});
    children.add(child);
    child.once('close', () => children.delete(child));
    // The stream gone (the client, the API server or Agate ended it): stdin ends, as a kubelet's would.
    socket.once('close', () => child.stdin.end());
    child.stdin.on('error', () => {});
    if (url.searchParams.get('input') !== '1') child.stdin.end();
    child.stdout.on('data', (d: Buffer) => socket.write(channelFrame(1, d)));
    child.stderr.on('data', (d: Buffer) => socket.write(channelFrame(2, d)));
    child.on('close', (code) => {
      exec.exitCode = code;
      exec.done = true;
      const status = code === 0
        ? { metadata: {}, status: 'Success' }
        : { metadata: {}, status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: String(code) }] } };
      socket.write(channelFrame(3, JSON.stringify(status)));
      socket.end(wsFrame(8, Buffer.from([0x03, 0xe8])));
    });
    let buffer = head;
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const frame = readClientFrame(buffer);
        if (frame === undefined) return;
        buffer = buffer.subarray(frame.size);
        if (frame.opcode === 8) return void child.stdin.end();
        // As the kubelet's reader (golang.org/x/net/websocket): every data frame, a continuation
        // too, is a message of its own, its first byte the channel.
        if (frame.opcode > 2 || frame.payload.length === 0) continue;
        const [channel] = frame.payload;
        const data = frame.payload.subarray(1);
        if (channel === 0) {
          exec.stdin = Buffer.concat([exec.stdin, data]);
          child.stdin.write(data);
        } else if (channel === 255 && data[0] === 0) child.stdin.end();
      }
    };
    socket.on('data', onData);
    if (head.length > 0) onData(Buffer.alloc(0));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    execs,
    close: async () => {
      for (const s of sockets) s.destroy();
      for (const c of children) c.kill('SIGKILL');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** One whole client frame, or undefined until it is. */
function readClientFrame(b: Buffer): { opcode: number; payload: Buffer; size: number } | undefined {
  if (b.length < 2) return undefined;
  let len = b[1]! & 0x7f;
  let at = 2;
  if (len === 126) {
    if (b.length < 4) return undefined;
    len = b.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (b.length < 10) return undefined;
    len = Number(b.readBigUInt64BE(2));
    at = 10;
  }
  const masked = (b[1]! & 0x80) !== 0;
  const size = at + (masked ? 4 : 0) + len;
  if (b.length < size) return undefined;
  const payload = Buffer.from(b.subarray(size - len, size));
  if (masked) for (let i = 0; i < len; i++) payload[i]! ^= b[at + (i & 3)]!;
  return { opcode: b[0]! & 0x0f, payload, size };
}
