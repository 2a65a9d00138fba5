/*
 * Arrays' binary send format (src/backend/utils/adt/arrayfuncs.c, array_send):
 * Int32 ndim | Int32 has-nulls flag | UInt32 element type | ndim × (Int32 length, Int32 lower
 * bound) | each element as Int32 length (−1 for NULL) then its own binary form.
 * Printed as the server prints arrays: `{1,2}`, `{{a,"b c"},{NULL,"\"q\""}}`, `[0:1]={1,2}`.
 */

/** PostgreSQL's MAXDIM. */
const MAX_DIMS = 6;

export function arrayText(b: Buffer, element: (value: Buffer, typeOid: number) => string): string | undefined {
  if (b.length < 12) return undefined;
  const ndim = b.readInt32BE(0);
  const elementOid = b.readUInt32BE(8);
  if (ndim === 0) return '{}';
  if (ndim < 0 || ndim > MAX_DIMS || b.length < 12 + 8 * ndim) return undefined;
  const lengths: number[] = [];
  const bounds: number[] = [];
  let count = 1;
  for (let i = 0; i < ndim; i++) {
    lengths.push(b.readInt32BE(12 + 8 * i));
    bounds.push(b.readInt32BE(16 + 8 * i));
    count *= lengths[i]!;
  }
  // Each element takes at least its 4-byte length: a count the bytes cannot hold is malformed.
  if (lengths.some((n) => n < 0) || count * 4 > b.length) return undefined;
  let pos = 12 + 8 * ndim;
  const items: string[] = [];
  for (let i = 0; i < count; i++) {
    if (pos + 4 > b.length) return undefined;
    const len = b.readInt32BE(pos);
    pos += 4;
    if (len === -1) {
      items.push('NULL');
      continue;
    }
    if (len < 0 || pos + len > b.length) return undefined;
    items.push(quote(element(b.subarray(pos, pos + len), elementOid)));
    pos += len;
  }
  if (pos !== b.length) return undefined;
  const nest = (dim: number, start: number): [string, number] => {
    const parts: string[] = [];
    let at = start;
    for (let i = 0; i < lengths[dim]!; i++) {
      if (dim === ndim - 1) parts.push(items[at++]!);
      else {
        const [inner, next] = nest(dim + 1, at);
        parts.push(inner);
        at = next;
      }
    }
    return [`{${parts.join(',')}}`, at];
  };
  const body = nest(0, 0)[0];
  // Lower bounds other than 1 are written out, as the server does.
  return bounds.every((lb) => lb === 1) ? body : `${bounds.map((lb, i) => `[${lb}:${lb + lengths[i]! - 1}]`).join('')}=${body}`;
}

/** An element as array_out writes it: quoted when empty, NULL-like, or holding a delimiter, brace, quote, backslash or space. */
function quote(text: string): string {
  if (text !== '' && !/[{}",\\\s]/.test(text) && text.toUpperCase() !== 'NULL') return text;
  return `"${text.replace(/(["\\])/g, '\\$1')}"`;
}
