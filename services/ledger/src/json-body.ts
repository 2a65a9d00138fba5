import type { RowBinaryWriter } from '../../../core/src/store/row-binary.js';
import { isFrozenIdentity } from '../../../schemas/src/codec.js';
import type { AgateEvent } from '../../../schemas/src/events.js';

/*
 * The ledger's `body` column, JSON.stringify(event), written straight into the row. V8 builds a
 * long JSON.stringify result as a chain of parts and copies it whole again when it is first
 * written out: about 5.7 + 2.9 KiB of garbage per statement in the profile of `agate start`
 * (its three events), most of it a Command's identity, the same for every command of a session.
 * Here each top-level member is written as it is made, a string value with nothing to escape
 * straight from the event, and a frozen identity's JSON once per identity. The bytes are
 * JSON.stringify's exactly (its members in key order, undefined left out, everything else
 * through JSON.stringify itself): json-body.test.ts compares the two.
 */

/** Characters JSON.stringify escapes in a string (and surrogates, so that a lone one is left to it). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
const QUOTE = 0x22; // "
const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }
const NULL = Buffer.from('null');
const identities = new WeakMap<object, Buffer>();
/** `"key":` and `,"key":` per member name (the schemas' field names: a few dozen). */
const keys = new Map<string, [Buffer, Buffer]>();

/** Writes JSON.stringify(event) as a RowBinary string (length, UTF-8 bytes). */
export function writeJsonBody(w: RowBinaryWriter, event: AgateEvent): void {
  const start = w.openString();
  let first = true;
  w.uint8(OPEN);
  const members = event as unknown as Record<string, unknown>;
  // for…in, not Object.keys: no array of keys made per event (~900 of the 1,350 bytes of garbage
  // a statement's three bodies made, and ~1 µs). Own members only, in the same order.
  for (const key in members) {
    if (!Object.hasOwn(members, key)) continue;
    const value = members[key];
    // What JSON.stringify leaves out of an object.
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol') continue;
    w.raw(memberHead(key)[first ? 0 : 1]);
    first = false;
    if (typeof value === 'string') writeString(w, value);
    else if (value === null) w.raw(NULL);
    // A finite number's JSON is its String() (-0 included: both "0"); NaN and Infinity are null.
    else if (typeof value === 'number' && Number.isFinite(value)) w.text(String(value));
    else if (key === 'identity' && isFrozenIdentity(value)) w.raw(identityJson(value));
    else w.text(JSON.stringify(value));
  }
  w.uint8(CLOSE);
  w.closeString(start);
}

function memberHead(key: string): [Buffer, Buffer] {
  let head = keys.get(key);
  if (head === undefined) {
    const json = `${JSON.stringify(key)}:`;
    // Bounded by the schemas' field names; anything else is not cached.
    head = [Buffer.from(json), Buffer.from(`,${json}`)];
    if (keys.size < 256) keys.set(key, head);
  }
  return head;
}

function writeString(w: RowBinaryWriter, value: string): void {
  if (needsEscape(value)) w.text(JSON.stringify(value));
  else w.uint8(QUOTE).text(value).uint8(QUOTE);
}

/** Whether JSON.stringify would escape something in `value` (a loop for short ones: cheaper than the regular expression). */
function needsEscape(value: string): boolean {
  if (value.length >= 64) return NEEDS_ESCAPE.test(value);
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return true;
  }
  return false;
}

/** A frozen identity's JSON, made once: the sessions' commands share their identity object. */
function identityJson(identity: object): Buffer {
  let json = identities.get(identity);
  if (json === undefined) identities.set(identity, (json = Buffer.from(JSON.stringify(identity))));
  return json;
}
