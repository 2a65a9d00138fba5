/** True when `b` starts in memory exactly where `a` ends: both are views of one buffer, side by side. */
export function adjoins(a: Buffer, b: Buffer): boolean {
  return a.buffer === b.buffer && a.byteOffset + a.length === b.byteOffset;
}

/**
 * The same bytes in as few views as they allow: views side by side in memory (the frames a reader
 * cut from one socket chunk) become one view of their buffer, with no copy. A relay writes the
 * result instead of concatenating the parts, so a relayed chunk costs no new allocation.
 */
export function joinAdjacent(parts: readonly Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const p of parts) {
    const last = out[out.length - 1];
    if (last !== undefined && adjoins(last, p)) out[out.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + p.length);
    else out.push(p);
  }
  return out;
}
