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
  let i = 0;
  while (i < parts.length) {
    // One view per run of adjoining parts (not one per join): a reply of five frames makes one object, not four.
    const first = parts[i]!;
    let last = first;
    let j = i + 1;
    while (j < parts.length && adjoins(last, parts[j]!)) last = parts[j++]!;
    out.push(j === i + 1 ? first : Buffer.from(first.buffer, first.byteOffset, last.byteOffset + last.length - first.byteOffset));
    i = j;
  }
  return out;
}
