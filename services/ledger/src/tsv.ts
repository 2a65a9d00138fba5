/*
 * TabSeparated encoding for bulk inserts: backslash, tab, newline and carriage return are
 * escaped; every other byte goes through as is, so binary values (hashes, encoded events) need
 * no base64. ClickHouse reads `\\`, `\t`, `\n`, `\r` back to the original bytes.
 */

const BACKSLASH = 0x5c;
/** Escape letter per byte (0 = none): `\\`, `\t`, `\n`, `\r`. A table, not an object: this runs per byte. */
const ESCAPE = new Uint8Array(256);
ESCAPE[0x5c] = 0x5c;
ESCAPE[0x09] = 0x74;
ESCAPE[0x0a] = 0x6e;
ESCAPE[0x0d] = 0x72;

/** Escapes raw bytes for one TSV field. */
export function tsvBytes(value: Uint8Array): Buffer {
  let extra = 0;
  for (let i = 0; i < value.length; i++) if (ESCAPE[value[i]!] !== 0) extra++;
  if (extra === 0) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const out = Buffer.allocUnsafe(value.length + extra);
  let j = 0;
  for (let i = 0; i < value.length; i++) {
    const b = value[i]!;
    const e = ESCAPE[b]!;
    if (e === 0) out[j++] = b;
    else {
      out[j++] = BACKSLASH;
      out[j++] = e;
    }
  }
  return out;
}

/** Escapes a string for one TSV field. */
export function tsvText(value: string): string {
  return /[\\\t\n\r]/.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : value;
}
