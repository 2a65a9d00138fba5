// Agate logs in upstream with whatever password method the target demands; and a FunctionCall,
// which policy cannot read as SQL, is refused in order like any other statement.
import { test } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { BufferWriter } from '../../services/ingress-proxy/src/pg/buffer-writer.js';
import { startAgate } from './agate-fixture.js';
import { RawClient } from './raw-client.js';

const METHOD = { md5: 'md5', plain: 'cleartext password', trust: 'trust (no password exchange)' } as const;

for (const role of ['md5', 'plain', 'trust'] as const) {
  test(`upstream login with the ${METHOD[role]} method`, async () => {
    const agate = await startAgate({ upstreamRole: role });
    try {
      const c = await agate.client();
      const r = await c.query('SELECT current_user AS u, count(*)::int AS n FROM items WHERE id > $1', [0]);
      assert.equal(r.rows, [{ u: agate.pg.users[role].user, n: 3 }]);
      await c.end();
      if (role === 'md5') {
        // FunctionCall 'F': Int32 function oid | Int16 n formats | Int16 n args | Int32 len + bytes … | Int16 result format
        const raw = await RawClient.login(agate.host, agate.port, await agate.token());
        const call = new BufferWriter().addInt32(1299 /* now() */).addInt16(0).addInt16(0).addInt16(0).flush(0x46);
        raw.send(call);
        const replies = await raw.readyCount(1);
        // Decided by the function it calls (pg_catalog.now, allowed here) and answered by the
        // server with FunctionCallResponse 'V', which pg-protocol's client parser does not name.
        assert.equal(replies.map((x) => x.name), ['error', 'readyForQuery']);
        assert.match((replies[0] as unknown as Error).message, /received invalid response: 56/);
        raw.close();
      }
    } finally {
      await agate.cleanup();
    }
  });
}

test.run();
