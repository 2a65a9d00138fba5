import type { ReadBody } from './request-body.js';
import type { RequestInfo } from './request-info.js';

/*
 * Whether the API server runs a write as a dry run (validated, admitted, answered, nothing
 * stored), decided as the API server decides it, for `attributes.dry_run`. The options of a
 * create, update, patch or delete (metav1 CreateOptions, UpdateOptions, PatchOptions,
 * DeleteOptions) carry `dryRun`, a list whose every value must be `All` (anything else is refused,
 * 422) and which makes a dry run when not empty. They are decoded from the query parameter named
 * exactly `dryRun` (`dryrun=All` is an ordinary write), except a delete's: when a DELETE has a
 * body, its DeleteOptions come from the body and the query's are not read at all, so
 * `DELETE …?dryRun=All` with a body `{}` deletes, and a body `{"dryRun":["All"]}` makes a dry
 * run of a DELETE whose text does not say so. The record's text is the request as sent; this
 * attribute says what it did.
 */

/** `attributes.dry_run` of a write the API server runs as a dry run. */
export const DRY_RUN_ALL = 'All';
/** `attributes.dry_run` of a delete whose DeleteOptions body Agate cannot read (protobuf, too large). */
export const DRY_RUN_UNKNOWN = 'unknown';

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Subresources whose handlers take no write options (a connection, not a stored change). */
const CONNECT = new Set(['exec', 'attach', 'portforward', 'proxy']);

/** `attributes.dry_run` for a request, or undefined when the API server stores what it does. */
export function dryRunOf(method: string, url: URL, info: RequestInfo, body: Buffer | undefined, read: ReadBody | undefined): string | undefined {
  const m = method.toUpperCase();
  if (!WRITES.has(m) || info.kind !== 'resource' || CONNECT.has(info.subresource)) return undefined;
  if (m === 'DELETE' && (body === undefined || body.length > 0)) {
    if (read?.kind !== 'parsed') return DRY_RUN_UNKNOWN;
    const doc = read.doc;
    return doc !== null && typeof doc === 'object' && dryRunList((doc as { dryRun?: unknown }).dryRun) ? DRY_RUN_ALL : undefined;
  }
  return dryRunList(url.searchParams.getAll('dryRun')) ? DRY_RUN_ALL : undefined;
}

/** A `dryRun` list the API server accepts and runs dry: not empty, every value `All`. */
function dryRunList(list: unknown): boolean {
  return Array.isArray(list) && list.length > 0 && list.every((v) => v === DRY_RUN_ALL);
}
