import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import type { Store } from '../../../core/src/store/store.js';
import { proveConsistency, proveInclusion, latestCheckpoint, listCheckpoints } from './prove.js';
import { listChains } from './verify.js';

/** A query-API route served by the ledger: path (with :params) and handler. */
interface LedgerRoute {
  path: string;
  handler: (params: Record<string, string>, query: URLSearchParams) => Promise<unknown>;
}

/**
 * The ledger's read routes for the query service: signed checkpoints for outside parties to
 * keep, inclusion proofs and consistency proofs. Ledger errors become the API's own codes.
 */
export function ledgerRoutes(store: Store): LedgerRoute[] {
  const chainOf = async (q: URLSearchParams): Promise<string> => {
    const chain = q.get('chain');
    if (chain !== null) return chain;
    const chains = await listChains(store);
    if (chains.length !== 1) throw new AgateError(ErrorCode.API_BAD_REQUEST, `name the chain (?chain=): ${chains.join(', ') || 'the ledger is empty'}`);
    return chains[0]!;
  };
  const size = (q: URLSearchParams, name: string): number => {
    const n = Number(q.get(name));
    if (!Number.isSafeInteger(n) || n < 1) throw new AgateError(ErrorCode.API_BAD_REQUEST, `${name} must be a positive integer`);
    return n;
  };
  const storedNote = async (chain: string, n: number): Promise<string> => {
    const cp = (await listCheckpoints(store, chain, 1_000_000)).find((c) => c.size === n);
    if (cp === undefined) throw new AgateError(ErrorCode.API_NOT_FOUND, `no stored checkpoint of size ${n} for chain ${chain}`);
    return cp.note;
  };
  return [
    { path: '/v1/ledger/checkpoint', handler: async (_p, q) => {
      const cp = await latestCheckpoint(store, await chainOf(q));
      if (cp === undefined) throw new AgateError(ErrorCode.API_NOT_FOUND, 'no checkpoint yet');
      return cp;
    } },
    // A limit that is not a positive integer is the client's error (400), never the store's (500).
    { path: '/v1/ledger/checkpoints', handler: async (_p, q) => ({ checkpoints: await listCheckpoints(store, await chainOf(q), q.has('limit') ? Math.min(1000, size(q, 'limit')) : 100) }) },
    { path: '/v1/ledger/proof/:event_id', handler: async ({ event_id }, q) => translate(async () => {
      const note = q.has('size') ? await storedNote(await chainOf(q), size(q, 'size')) : undefined;
      return proveInclusion(store, event_id!, note);
    }) },
    { path: '/v1/ledger/consistency', handler: async (_p, q) => translate(async () => {
      const chain = await chainOf(q);
      return proveConsistency(store, await storedNote(chain, size(q, 'old')), await storedNote(chain, size(q, 'new')));
    }) },
  ];
}

async function translate<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AgateError && err.code === ErrorCode.LEDGER_RECORD_NOT_FOUND) throw new AgateError(ErrorCode.API_NOT_FOUND, err.message, { cause: err });
    if (err instanceof AgateError && (err.code === ErrorCode.LEDGER_PROOF_MALFORMED || err.code === ErrorCode.LEDGER_CHECKPOINT_MALFORMED)) throw new AgateError(ErrorCode.API_BAD_REQUEST, err.message, { cause: err });
    throw err;
  }
}
