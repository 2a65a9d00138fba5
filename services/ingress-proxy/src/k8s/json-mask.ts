import { ConfigError } from '../../../../core/src/errors.js';
import { compileGlob } from '../../../../core/src/glob.js';
import { MASKED_VALUE, type Masker } from '../masking/masker.js';

/** A Secret's `data` value once masked: base64 of `[masked]`, so clients still decode it. */
export const MASKED_SECRET_DATA = Buffer.from(MASKED_VALUE).toString('base64');
/** Written by `kubectl apply`; it holds the whole applied object, Secret data included. */
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** A configured field to mask: every value at `path` in objects whose kind matches. */
export interface FieldRule {
  kind: RegExp;
  /** Dotted segments; `*` is any key or any array element. */
  path: string[];
}

/** What to mask in a Kubernetes JSON document beyond Secret data, which is always masked. */
export interface JsonMaskRules {
  fields: readonly FieldRule[];
  /** A mask set: string values under a key matching its column globs, and detected spans. */
  masker?: Masker;
  /**
   * The kind of the objects a Table in the document lists, as its request names them (a row's
   * own object says so only with `includeObject=Object`); absent: any kind.
   */
  tableKind?: string | typeof ANY_KIND;
}

/** Parses `Kind:dotted.path` (e.g. `ConfigMap:data.*`, `*:spec.template.spec.containers.*.env.*.value`). */
export function parseFieldRule(spec: string, where: string): FieldRule {
  const i = spec.indexOf(':');
  const kind = spec.slice(0, i);
  const path = spec.slice(i + 1).split('.');
  if (i <= 0 || path.some((p) => p === '')) throw new ConfigError(`${where}: expected KIND:dotted.path such as "ConfigMap:data.*", got "${spec}"`);
  return { kind: compileGlob(kind), path };
}

/**
 * Masks a parsed Kubernetes document in place and returns how many values were replaced. Walks
 * the whole tree, so objects inside lists, tables and watch events are found: list items take
 * the kind of their list (`SecretList` items are Secrets, though they carry no `kind` of their own).
 */
export function maskDocument(doc: unknown, rules: JsonMaskRules): number {
  return visit(doc, undefined, rules);
}

/** Masks one object whose kind may only be known from its list (`SecretList` items). */
export function maskObject(obj: unknown, kind: string, rules: JsonMaskRules): number {
  return visit(obj, kind === '' ? undefined : kind, rules);
}

/**
 * A kind for a request body whose resource Agate cannot name (a custom resource without a
 * `kind` in its patch): every configured field rule applies to it, whatever kind it names.
 */
export const ANY_KIND = Symbol('any kind');

/**
 * Masks a document as an object of `kind`, whatever its own `kind` field says (or lacks): a
 * patch addressed to a Secret is Secret data, though a patch names no kind.
 */
export function maskAs(doc: unknown, kind: string | typeof ANY_KIND, rules: JsonMaskRules): number {
  return visit(doc, kind, rules, true);
}

function visit(node: unknown, impliedKind: string | typeof ANY_KIND | undefined, rules: JsonMaskRules, forced = false): number {
  if (Array.isArray(node)) {
    let n = 0;
    for (let i = 0; i < node.length; i++) {
      const item: unknown = node[i];
      // A list's strings (a container's args, a Table's cells) have no key: the detectors still look.
      if (typeof item === 'string') n += maskItem(node, i, item, rules.masker);
      else n += visit(item, impliedKind, rules);
    }
    return n;
  }
  if (!isObject(node)) return 0;
  const kind = !forced && typeof node.kind === 'string' ? node.kind : impliedKind;
  let n = 0;
  if (kind === 'Secret') n += maskSecret(node);
  if (kind === 'Table' && rules.fields.length > 0) n += maskTableCells(node, rules);
  if (kind !== undefined) for (const f of rules.fields) if (kind === ANY_KIND || f.kind.test(kind)) n += maskPath(node, f.path, 0);
  n += maskLastApplied(node, rules);
  const itemKind = typeof kind === 'string' && kind.endsWith('List') && kind.length > 4 ? kind.slice(0, -4) : undefined;
  for (const [key, value] of Object.entries(node)) {
    if (typeof value === 'string') {
      n += maskString(node, key, value, rules.masker);
    } else if (value !== null && typeof value === 'object') {
      n += visit(value, key === 'items' ? itemKind : undefined, rules);
    }
  }
  return n;
}

function maskSecret(secret: Record<string, unknown>): number {
  let n = 0;
  for (const [field, replacement] of [['data', MASKED_SECRET_DATA], ['stringData', MASKED_VALUE]] as const) {
    const values = secret[field];
    if (!isObject(values)) continue;
    for (const key of Object.keys(values)) {
      // null removes the key in a patch: it says nothing about the value.
      if (values[key] === replacement || values[key] === null) continue;
      values[key] = replacement;
      n += 1;
    }
  }
  return n;
}

/**
 * A Table's cells are the server's printing of fields (a CRD's printer columns any field it
 * names), which no path of a field rule reaches: a row of a kind a field rule names has every
 * cell but its name masked. Which field a cell prints is not in the Table, so a field rule for
 * the kind masks them all; the kind is the row object's own, else the request's.
 */
function maskTableCells(table: Record<string, unknown>, rules: JsonMaskRules): number {
  if (!Array.isArray(table.rows)) return 0;
  const columns = Array.isArray(table.columnDefinitions) ? table.columnDefinitions : [];
  let n = 0;
  for (const row of table.rows) {
    if (!isObject(row) || !Array.isArray(row.cells)) continue;
    const object = isObject(row.object) ? row.object : undefined;
    const own = typeof object?.kind === 'string' && !object.kind.startsWith('PartialObjectMetadata') ? object.kind : undefined;
    const kind = own ?? rules.tableKind ?? ANY_KIND;
    if (!rules.fields.some((f) => kind === ANY_KIND || f.kind.test(kind))) continue;
    const name = isObject(object?.metadata) ? object.metadata.name : undefined;
    const cells = row.cells as unknown[];
    for (let i = 0; i < cells.length; i++) {
      const column = columns[i];
      if (cells[i] === null || cells[i] === MASKED_VALUE || (isObject(column) && column.format === 'name')) continue;
      // A watch's later tables come without column definitions: the cell holding the name stays.
      if (columns.length === 0 && name !== undefined && cells[i] === name) continue;
      cells[i] = MASKED_VALUE;
      n += 1;
    }
  }
  return n;
}

function maskLastApplied(node: Record<string, unknown>, rules: JsonMaskRules): number {
  const metadata = node.metadata;
  if (!isObject(metadata) || !isObject(metadata.annotations)) return 0;
  const annotations = metadata.annotations;
  const text = annotations[LAST_APPLIED];
  if (typeof text !== 'string') return 0;
  let inner: unknown;
  try {
    inner = JSON.parse(text);
  } catch {
    annotations[LAST_APPLIED] = MASKED_VALUE; // unreadable: it may hold anything
    return 1;
  }
  const n = visit(inner, undefined, rules);
  if (n > 0) annotations[LAST_APPLIED] = JSON.stringify(inner);
  return n;
}

function maskPath(node: unknown, path: readonly string[], at: number): number {
  if (at === path.length) return 0;
  const seg = path[at]!;
  const last = at === path.length - 1;
  const keys = Array.isArray(node) ? (seg === '*' ? node.map((_, i) => i) : []) : isObject(node) ? (seg === '*' ? Object.keys(node) : seg in node ? [seg] : []) : [];
  let n = 0;
  for (const k of keys) {
    const holder = node as Record<string | number, unknown>;
    if (last) {
      if (holder[k] === null || holder[k] === undefined || holder[k] === MASKED_VALUE) continue;
      holder[k] = MASKED_VALUE;
      n += 1;
    } else {
      n += maskPath(holder[k], path, at + 1);
    }
  }
  return n;
}

function maskString(holder: Record<string, unknown>, key: string, value: string, masker: Masker | undefined): number {
  if (masker === undefined || value === MASKED_VALUE || value === MASKED_SECRET_DATA) return 0;
  if (masker.masksColumn(key)) {
    holder[key] = MASKED_VALUE;
    return 1;
  }
  const m = masker.maskText(value);
  if (m.count > 0) holder[key] = m.text;
  return m.count;
}

function maskItem(list: unknown[], i: number, value: string, masker: Masker | undefined): number {
  if (masker === undefined || value === MASKED_VALUE || value === MASKED_SECRET_DATA) return 0;
  const m = masker.maskText(value);
  if (m.count > 0) list[i] = m.text;
  return m.count;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
