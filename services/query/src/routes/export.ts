import type { Store } from '../../../../core/src/store/store.js';
import { StoreExportSource } from '../export/store-source.js';
import { intParam, textParam } from '../params.js';
import { mediaType, toNdjson } from '../render.js';
import type { Route } from '../router.js';
import { send } from '../router.js';

/**
 * GET /v1/export/ocsf: OCSF events after a ledger position, as NDJSON. The CLI's
 * `agate export` pages through it and keeps its own durable position.
 */
export function exportRoutes(store: Store): Route[] {
  const source = new StoreExportSource(store);
  return [
    {
      method: 'GET', path: '/v1/export/chains', permission: 'export',
      async handler() {
        return { kind: 'json', body: { chains: await source.chains() } };
      },
    },
    {
      method: 'GET', path: '/v1/export/ocsf', permission: 'export',
      async handler({ query: q }) {
        const chain = textParam(q, 'chain') ?? 'embedded';
        const after = intParam(q, 'after', 0, 0, Number.MAX_SAFE_INTEGER);
        const limit = intParam(q, 'limit', 500, 1, 5000);
        const events = await source.read(chain, after, limit);
        return { kind: 'stream', write: async (res) => send(res, 200, mediaType('ndjson'), toNdjson(events)) };
      },
    },
  ];
}
