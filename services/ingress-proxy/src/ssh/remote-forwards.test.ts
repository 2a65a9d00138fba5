import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { SAMPLES } from '../../../../schemas/src/samples.js';
import { RemoteForwards } from './remote-forwards.js';

const forwards = suite('ssh/remote-forwards');
const command = SAMPLES.Command;

forwards('an incoming connection is matched by bind address and the port the target bound', () => {
  const f = new RemoteForwards();
  f.add({ bindAddr: '127.0.0.1', clientBindAddr: '127.0.0.1', bindPort: 0, boundPort: 40001, command });
  f.add({ bindAddr: 'localhost', clientBindAddr: 'localhost', bindPort: 8080, boundPort: 8080, command });
  assert.is(f.receiving('127.0.0.1', 40001)?.boundPort, 40001);
  assert.is(f.receiving('localhost', 8080)?.bindPort, 8080);
  assert.is(f.receiving('127.0.0.1', 0), undefined, 'the requested 0 is not a port anyone connects to');
  assert.is(f.receiving('127.0.0.1', 8080), undefined, 'another address is another listener');
});

forwards('a cancel names the requested port or the one the target chose; takeAll empties', () => {
  const f = new RemoteForwards();
  f.add({ bindAddr: '127.0.0.1', clientBindAddr: '127.0.0.1', bindPort: 0, boundPort: 40001, command });
  f.add({ bindAddr: '127.0.0.1', clientBindAddr: '127.0.0.1', bindPort: 8080, boundPort: 8080, command });
  f.add({ bindAddr: '127.0.0.1', clientBindAddr: '127.0.0.1', bindPort: 0, boundPort: 40002, command });
  assert.is(f.take('127.0.0.1', 40001)?.boundPort, 40001);
  assert.is(f.take('127.0.0.1', 40001), undefined, 'taken once');
  assert.is(f.take('127.0.0.1', 8080)?.bindPort, 8080);
  assert.equal(f.takeAll().map((x) => x.boundPort), [40002]);
  assert.equal(f.takeAll(), []);
});

forwards('full at the limit', () => {
  const f = new RemoteForwards(2);
  f.add({ bindAddr: '127.0.0.1', clientBindAddr: '127.0.0.1', bindPort: 1, boundPort: 1, command });
  assert.not.ok(f.full);
  f.add({ bindAddr: '127.0.0.1', clientBindAddr: '127.0.0.1', bindPort: 2, boundPort: 2, command });
  assert.ok(f.full);
});

forwards('a request being decided holds its place: requests sent at once cannot all pass the limit', () => {
  const f = new RemoteForwards(2);
  const first = f.reserve();
  const second = f.reserve();
  assert.ok(f.full, 'two requests in flight fill a limit of two');
  first();
  first();
  assert.not.ok(f.full, 'a place given back once, however often released');
  f.add({ bindAddr: '127.0.0.1', clientBindAddr: '127.0.0.1', bindPort: 1, boundPort: 1, command });
  assert.ok(f.full);
  second();
  assert.not.ok(f.full);
});

forwards.run();
