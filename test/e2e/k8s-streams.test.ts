// exec and attach over WebSocket, read and recorded channel by channel: what kubectl types on
// stdin is in the record before it reaches the process, and what came back on stdout, stderr
// and the error channel is recorded as it passes. Real: kubectl, Agate (its own process), the
// kube-apiserver (which proxies the WebSocket to the node's kubelet). Not real: the kubelet, a
// stub (test/harness/stub-kubelet.ts) that runs the command as a local process, as no container
// runtime exists here; it keeps what it read on stdin, the witness compared with the record.
import { createHash } from 'node:crypto';
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { startStubKubelet, type StubKubelet } from '../harness/stub-kubelet.js';
import { until } from '../harness/until.js';
import { channelFrame, wsFrame } from '../harness/ws-frame.js';
import { agentKubectl, agentToken, busLog, commandsWhere, events, responsesOf, stopKubeAgate, verdictOf, type KubeAgate } from './kube-agate.js';
import { admin, audited, startAuditedKube, tlsSession } from './kube-raw.js';
import type { AgateEvent, Command, Response } from '../../schemas/src/events.js';

const test = suite<KubeAgate & { kubelet: StubKubelet }>('e2e/kubernetes exec and attach streams recorded');

const POLICY = `policy:
  default: allow
`;

const POD = '/api/v1/namespaces/default/pods/worker';

test.before(async (ctx) => {
  await startAuditedKube(ctx, POLICY, async () => {
    ctx.kubelet = await startStubKubelet(ctx.kube.other);
    await admin(ctx, ['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'stub' } }));
    const status = {
      status: {
        addresses: [{ type: 'InternalIP', address: '127.0.0.1' }], daemonEndpoints: { kubeletEndpoint: { Port: ctx.kubelet.port } },
        declaredFeatures: ['ExtendWebSocketsToKubelet'],
      },
    };
    await admin(ctx, ['patch', 'node', 'stub', '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]);
    await admin(ctx, ['-n', 'default', 'create', 'serviceaccount', 'default']);
    await admin(ctx, ['create', '-f', '-'], JSON.stringify({
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'worker', namespace: 'default' },
      spec: { nodeName: 'stub', automountServiceAccountToken: false, containers: [{ name: 'main', image: 'busybox' }] },
    }));
  });
});

test.after(async (ctx) => {
  await ctx.kubelet?.close();
  await stopKubeAgate(ctx);
});

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The rows of a stream's recorded parts, in order: [time, channel, bytes, digest, data]. */
function streamRows(evs: AgateEvent[], c: Command): string[][] {
  return responsesOf(evs, c).filter((r) => r.command_tag?.startsWith('stream part ')).flatMap((r) => r.sample.map((row) => row.map((v) => v ?? '')));
}

/** The closing Response of an upgrade (its tag names the status code). */
const closing = (evs: AgateEvent[], c: Command): Response | undefined => responsesOf(evs, c).find((r) => / upgrade, /.test(r.command_tag ?? ''));

test('kubectl exec -i: stdin, stdout, stderr and the exit recorded channel by channel; what the process read is what the record holds', async (ctx) => {
  const script = 'echo out-line; echo err-line >&2\necho "got $((40 + 2))"; exit 3\n';
  const r = await agentKubectl(ctx, ['exec', '-i', '-n', 'default', 'worker', '--', 'sh'], { input: script });
  // (Before: refused by rule "agate.unrecorded-input", exit 1, nothing reached the pod.)
  assert.is(r.code, 3, r.stderr);
  assert.is(r.stdout, 'out-line\ngot 42\n');
  assert.match(r.stderr, 'err-line');
  const exec = ctx.kubelet.execs.at(-1)!;
  assert.equal(exec.command, ['sh']);
  assert.is(exec.stdin.toString(), script);
  const { evs, c } = await until('the exec recorded', () => {
    const evs = events(ctx);
    const c = commandsWhere(evs, (x) => x.attributes.subresource === 'exec').at(-1);
    return c !== undefined && closing(evs, c) !== undefined ? { evs, c } : undefined;
  });
  assert.equal([c.attributes.input, c.attributes.stream, verdictOf(evs, c)?.decision], ['recorded', 'recorded', 'allow']);
  const rows = streamRows(evs, c);
  const on = (channel: string) => rows.filter((row) => row[1] === channel);
  // stdin: every byte the process read, in the record (text and digest), in order.
  assert.is(on('stdin').map((row) => row[4]).join(''), exec.stdin.toString());
  for (const row of rows) assert.match(row[3]!, /^sha256:[0-9a-f]{64}$/);
  assert.is(on('stdout').map((row) => row[4]).join(''), 'out-line\ngot 42\n');
  assert.is(on('stderr').map((row) => row[4]).join(''), 'err-line\n');
  assert.match(on('error').map((row) => row[4]).join(''), '"NonZeroExitCode"');
  // kubectl ends stdin on the v5 close channel.
  assert.equal(on('close').map((row) => row[2]), ['1']);
  const end = closing(evs, c)!;
  assert.match(end.command_tag!, /^101 upgrade, /);
  assert.equal(end.columns, ['channel', 'messages', 'bytes', 'digest']);
  const stdin = end.sample.find((row) => row[0] === 'stdin');
  assert.equal([stdin?.[2], stdin?.[3]], [String(exec.stdin.length), sha(exec.stdin)]);
  // The API server saw the exec the record names.
  const seen = await audited(ctx, (e) => /\/pods\/worker\/exec/.test(e.requestURI));
  assert.ok(seen.length >= 1, 'the exec did not reach the API server');
});

test('a secret typed on stdin is masked in the record; the process still reads it', async (ctx) => {
  const key = 'AKIAQWERTYUIOPASDFGH';
  const r = await agentKubectl(ctx, ['exec', '-i', '-n', 'default', 'worker', '--', 'cat'], { input: `export KEY=${key}\n` });
  assert.is(r.code, 0, r.stderr);
  assert.is(ctx.kubelet.execs.at(-1)!.stdin.toString(), `export KEY=${key}\n`);
  const rows = await until('the exec recorded', () => {
    const evs = events(ctx);
    const c = commandsWhere(evs, (x) => x.attributes.subresource === 'exec' && x.text.includes('command=cat')).at(-1);
    return c !== undefined && closing(evs, c) !== undefined ? streamRows(evs, c) : undefined;
  });
  const stdin = rows.filter((row) => row[1] === 'stdin').map((row) => row[4]).join('');
  assert.match(stdin, 'export KEY=[masked:');
  assert.not.match(JSON.stringify(rows), key);
});

test('a secret split across two stdin messages, or two stdout messages, is masked in the record all the same; the process reads it whole', async (ctx) => {
  const key = 'AKIAZXCVBNMLKJHGFDSA';
  const { s, head } = await openExec(ctx, 'command=sh&command=-c&command=cat%3B+printf+AKIAZXCV%3B+sleep+0.4%3B+printf+BNMLKJHGFDSA&stdin=true&stdout=true');
  assert.match(head, /^HTTP\/1\.1 101 /, head.slice(0, 300));
  // Two messages, sent apart: the process (cat) echoes each as it comes, so stdout is split too.
  s.write(channelFrame(0, `export KEY=${key.slice(0, 9)}`, { mask: true }));
  await until('the first half read', () => (ctx.kubelet.execs.at(-1)?.stdin.length === 20 ? true : undefined));
  await s.settle(() => false, 300);
  s.write(channelFrame(0, `${key.slice(9)}\n`, { mask: true }));
  await until('the second half read', () => (ctx.kubelet.execs.at(-1)?.stdin.toString().endsWith('\n') ? true : undefined));
  s.write(channelFrame(255, Buffer.from([0]), { mask: true }));
  await until('the process ended', () => (ctx.kubelet.execs.at(-1)?.done ? true : undefined));
  await s.settle(() => false, 500);
  s.end();
  assert.is(ctx.kubelet.execs.at(-1)!.stdin.toString(), `export KEY=${key}\n`);
  const rows = await until('the exec recorded', () => {
    const evs = events(ctx);
    const c = commandsWhere(evs, (x) => x.attributes.subresource === 'exec' && x.text.includes('printf+AKIAZXCV')).at(-1);
    return c !== undefined && closing(evs, c) !== undefined ? streamRows(evs, c) : undefined;
  });
  const text = (channel: string) => rows.filter((row) => row[1] === channel).map((row) => row[4]).join('');
  // (Before: "export KEY=AKIAZXCVB" then "NMLKJHGFDSA\n", each half too short for the detector.)
  assert.is(text('stdin'), 'export KEY=[masked:cloud_access_key]\n');
  assert.match(text('stdout'), /^export KEY=\[masked:cloud_access_key\]\n\[masked:cloud_access_key\]$/);
  for (const half of [key.slice(0, 9), key.slice(9), 'AKIAZXCV', 'BNMLKJHGFDSA']) assert.not.match(JSON.stringify(rows), half);
  // Every byte is still counted message by message, and each recorded text has its digest.
  assert.equal(rows.filter((row) => row[1] === 'stdin').map((row) => row[2]), ['20', '12']);
  for (const row of rows) if (row[4] !== '') assert.match(row[3]!, /^sha256:[0-9a-f]{64}$/);
});

test('a secret in an exec\'s command (percent-encoded in the query as kubectl sends it) is masked in the recorded request', async (ctx) => {
  const key = 'AKIAMNBVCXZLKJHGFDSA';
  const r = await agentKubectl(ctx, ['exec', '-n', 'default', 'worker', '--', 'sh', '-c', `echo KEY=${key} postgres://app:s3cret-pw@db/x`]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, `KEY=${key} postgres://app:s3cret-pw@db/x\n`);
  const c = await until('the exec recorded', () => commandsWhere(events(ctx), (x) => x.attributes.subresource === 'exec' && x.text.includes('command=-c') && x.text.includes('KEY')).at(-1));
  // (Before: "command=echo+KEY%3DAKIAMNBV…+postgres%3A%2F%2Fapp%3As3cret-pw%40db", masked nowhere.)
  assert.not.match(c.text, 'MNBVCXZ');
  assert.not.match(c.text, 's3cret-pw');
  assert.match(c.text, 'KEY%3D[masked:cloud_access_key]');
  assert.not.ok(busLog(ctx).includes(key), 'the key is in the bus log');
});

/** A WebSocket exec opened by hand; resolves with the connection once the 101 arrived. */
async function openExec(ctx: KubeAgate, query: string, protocol = 'v5.channel.k8s.io') {
  const token = await agentToken(ctx);
  const s = await tlsSession(ctx);
  s.write(`GET ${POD}/exec?${query} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`);
  const head = await s.settle((t) => /\r\n\r\n/.test(t), 10_000);
  return { s, head };
}

test('a frame Agate cannot read (a reserved bit set) ends the stream before it reaches the process, and the record says why', async (ctx) => {
  const { s, head } = await openExec(ctx, 'command=cat&stdin=true&stdout=true');
  assert.match(head, /^HTTP\/1\.1 101 /, head.slice(0, 300));
  s.write(channelFrame(0, 'first\n', { mask: true }));
  await until('the first line echoed', () => (ctx.kubelet.execs.at(-1)?.stdin.toString() === 'first\n' ? true : undefined));
  // RSV1 means a compressed frame: its bytes are not what the process would read.
  s.write(wsFrame(2, Buffer.from('\x00hidden\n'), { mask: true, rsv: 4 }));
  await s.settle(() => false, 1500);
  assert.ok(s.closed, 'the stream was not ended');
  s.end();
  assert.is(ctx.kubelet.execs.at(-1)!.stdin.toString(), 'first\n');
  const end = await until('the end recorded', () => {
    const evs = events(ctx);
    const c = commandsWhere(evs, (x) => x.attributes.subresource === 'exec' && x.text.includes('command=cat&stdin=true')).at(-1);
    return c === undefined ? undefined : closing(evs, c);
  });
  assert.equal([end.status, end.error_code], ['error', 'PROTOCOL_VIOLATION']);
  assert.match(end.error_message ?? '', 'Agate ended the stream: WebSocket frame: a reserved bit is set');
});

test('a continuation frame is read as the kubelet reads it: its own first byte is its channel, so stdin "continuing" a resize is recorded as stdin', async (ctx) => {
  const { s, head } = await openExec(ctx, 'command=cat&stdin=true&stdout=true&tty=false');
  assert.match(head, /^HTTP\/1\.1 101 /, head.slice(0, 300));
  s.write(wsFrame(2, Buffer.from('\x04{"Width":80,"Height":24}'), { mask: true, fin: false }));
  s.write(wsFrame(0, Buffer.from('\x00echo smuggled\n'), { mask: true }));
  await until('the process read it', () => (ctx.kubelet.execs.at(-1)?.stdin.toString() === 'echo smuggled\n' ? true : undefined));
  s.write(channelFrame(255, Buffer.from([0]), { mask: true }));
  await s.settle(() => false, 1000);
  s.end();
  const rows = await until('the exec recorded', () => {
    const evs = events(ctx);
    const c = commandsWhere(evs, (x) => x.attributes.subresource === 'exec' && x.text.includes('tty=false')).at(-1);
    return c !== undefined && closing(evs, c) !== undefined ? streamRows(evs, c) : undefined;
  });
  // (Before: read message by message, it was recorded as resize data "\u0000echo smuggled\n".)
  assert.equal(rows.filter((row) => row[1] === 'stdin').map((row) => row[4]), ['echo smuggled\n']);
  assert.equal(rows.filter((row) => row[1] === 'resize').map((row) => row[4]), ['{"Width":80,"Height":24}']);
});

test('a stream Agate cannot read (base64 channels only, or SPDY) stays unrecorded input: refused under default allow', async (ctx) => {
  const { s, head } = await openExec(ctx, 'command=sh&stdin=true&stdout=true', 'base64.channel.k8s.io');
  s.end();
  assert.match(head, /^HTTP\/1\.1 403 /, head.slice(0, 300));
  assert.match(head, 'agate.unrecorded-input');
  const evs = events(ctx);
  const c = commandsWhere(evs, (x) => x.attributes.subresource === 'exec' && x.text.includes('command=sh&stdin=true')).at(-1)!;
  assert.is(c.attributes.input, 'unrecorded');
});

test.run();
