import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../core/src/log.js';
import { directorySink, webhookSink } from './checkpoint-sink.js';

const cp = { chainId: 'embedded', origin: 'agate.test/ledger/embedded', size: 42, note: 'agate.test/ledger/embedded\n42\nAAAA\n\n\u2014 k AAAA\n' };
const sink = suite('checkpoint sinks');

sink('the directory sink writes the size file and replaces latest', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agate-sink-'));
  try {
    await directorySink(dir).publish(cp);
    await directorySink(dir).publish({ ...cp, size: 43 });
    assert.is(readFileSync(join(dir, 'embedded', '42.checkpoint'), 'utf8'), cp.note);
    assert.is(readFileSync(join(dir, 'embedded', 'latest.checkpoint'), 'utf8'), cp.note);
    assert.ok(readFileSync(join(dir, 'embedded', '43.checkpoint'), 'utf8').length > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

sink('the webhook sink POSTs the note; a failing endpoint is not fatal', async () => {
  const received: { body: string; size: string | undefined }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ body, size: req.headers['x-agate-checkpoint-size'] as string | undefined });
      res.writeHead(received.length === 1 ? 204 : 500).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/cp`;
  try {
    await webhookSink(url, silentLogger).publish(cp);
    await webhookSink(url, silentLogger).publish(cp); // answered 500: logged, not thrown
    assert.equal(received[0], { body: cp.note, size: '42' });
    assert.is(received.length, 2);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  await webhookSink(url, silentLogger, 500).publish(cp); // nobody listens any more: not thrown either
});

sink.run();
