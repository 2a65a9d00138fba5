import type { Store } from '../../../../core/src/store/store.js';
import type { EventCodec } from '../../../../schemas/src/codec.js';
import { ledgerRoutes as ledgerProofRoutes } from '../../../ledger/src/api.js';
import type { CheckpointSources } from '../../../ledger/src/known-checkpoints.js';
import { chainsToVerify, verifyWithKnownCheckpoints } from '../../../ledger/src/verify.js';
import { intParam } from '../params.js';
import { checkCommandFacts } from '../facts-check.js';
import { checkSessionTables } from '../session-check.js';
import { listAuthFailures } from '../queries.js';
import type { Route } from '../router.js';

/** Keys and checkpoint directories the verify route checks the store against (the store's own checkpoints always). */
export type LedgerVerifySources = CheckpointSources;

export function ledgerRoutes(store: Store, codec: EventCodec, sources: LedgerVerifySources = { verifiers: [], dirs: [] }): Route[] {
  return [
    {
      method: 'GET', path: '/v1/auth-failures', permission: 'read',
      async handler({ query: q }) {
        const rows = await listAuthFailures(store, intParam(q, 'limit', 100, 1, 1000));
        return { kind: 'rows', key: 'auth_failures', rows: rows as unknown as Record<string, unknown>[], next_cursor: null };
      },
    },
    {
      method: 'GET', path: '/v1/ledger/verify', permission: 'verify',
      async handler() {
        // One chain at a time: each scan already uses all of the engine's threads.
        const chains = [];
        for (const c of await chainsToVerify(store, sources.dirs)) chains.push(await verifyWithKnownCheckpoints(store, codec, c, sources));
        const sessions = await checkSessionTables(store);
        const facts = await checkCommandFacts(store);
        return { kind: 'json', body: { ok: chains.every((c) => c.ok) && sessions?.ok !== false && facts?.ok !== false, chains, sessions, facts } };
      },
    },
    // Signed checkpoints and proofs, served for auditors who keep them outside the store.
    ...ledgerProofRoutes(store).map((r): Route => ({
      method: 'GET', path: r.path, permission: 'verify',
      handler: async ({ params, query }) => ({ kind: 'json', body: await r.handler(params, query) }),
    })),
  ];
}
