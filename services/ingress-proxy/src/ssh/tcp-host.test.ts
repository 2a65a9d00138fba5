import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { canonicalBindHost, canonicalTcpHost } from './tcp-host.js';

const test = suite('ssh/canonicalTcpHost');

test('every spelling getaddrinfo reads as 127.0.0.1 is 127.0.0.1', () => {
  for (const h of ['127.0.0.1', '127.1', '127.0.1', '2130706433', '0x7f000001', '0x7f.1', '0177.0.0.1', '127.000.000.001', '[::ffff:127.0.0.1]', '::ffff:7f00:1',
    'localhost', 'LOCALHOST.', 'app.localhost', 'localhost.localdomain', '0.0.0.0', '0', '::ffff:0.0.0.0']) {
    assert.is(canonicalTcpHost(h), '127.0.0.1', h);
  }
});

test('IPv6 in any notation is its compressed form; names other than loopback stay as named', () => {
  assert.is(canonicalTcpHost('0:0:0:0:0:0:0:1'), '::1');
  assert.is(canonicalTcpHost('[::1]'), '::1');
  assert.is(canonicalTcpHost('::'), '::1');
  assert.is(canonicalTcpHost('ip6-localhost'), '::1');
  assert.is(canonicalTcpHost('FE80::1%eth0'), 'fe80::1');
  assert.is(canonicalTcpHost('2001:DB8:0:0::1'), '2001:db8::1');
  assert.is(canonicalTcpHost('10.0.0.1'), '10.0.0.1');
  assert.is(canonicalTcpHost('167772161'), '10.0.0.1');
  assert.is(canonicalTcpHost('DB.Internal.'), 'db.internal');
  // Not a number in inet_aton's sense: a name (that the target's resolver may read however it likes).
  assert.is(canonicalTcpHost('10.0.0.1.nip.io'), '10.0.0.1.nip.io');
  assert.is(canonicalTcpHost('1.2.3.4.5'), '1.2.3.4.5');
  assert.is(canonicalTcpHost('256.1.1.1'), '256.1.1.1');
  assert.is(canonicalTcpHost('08.1.1.1'), '08.1.1.1');
});

test.run();

const bind = suite('ssh/canonicalBindHost');

bind('every spelling sshd listens on all interfaces for is 0.0.0.0, never loopback', () => {
  for (const h of ['', ' ', '*', '0.0.0.0', '0', '0x0', '0.0', '000.0.0.0', '::', '[::]', '0:0:0:0:0:0:0:0', '::ffff:0.0.0.0', '[::ffff:0:0]']) {
    assert.is(canonicalBindHost(h), '0.0.0.0', JSON.stringify(h));
  }
});

bind('loopback and other addresses are spelt as a -L host', () => {
  for (const h of ['localhost', 'LocalHost.', '127.1', '2130706433', '[::ffff:127.0.0.1]']) assert.is(canonicalBindHost(h), '127.0.0.1', h);
  assert.is(canonicalBindHost('[::1]'), '::1');
  assert.is(canonicalBindHost('10.0.0.1'), '10.0.0.1');
  assert.is(canonicalBindHost('Eth0.Example.'), 'eth0.example');
});

bind.run();
