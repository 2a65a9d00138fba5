import { z } from 'zod';

/*
 * docs/configuration.md's key table, generated from the zod schema in config.ts, so a key's type,
 * default and meaning are written once, beside its validation. Every key must carry a
 * description (`.describe()`, or `.meta({ description })`); the generator refuses a schema with an
 * undocumented key, so a new key cannot reach the docs without one.
 *
 * Extra metadata a schema may carry (through `.meta()`):
 * - `docDefault`: the default as written in the docs, when the value is computed (`HOST-PID`);
 * - `docType`: the type as written in the docs (`HOST:PORT`, `secret`);
 * - `docLeaf`: document an object as one key rather than key by key (secret references).
 */

interface ReferenceRow {
  key: string;
  type: string;
  default: string;
  meaning: string;
  /** For a key of some variants of a discriminated union only: which, e.g. "kind `kafka`". */
  variants?: string;
}

interface DocMeta {
  description?: string;
  docDefault?: string;
  docType?: string;
  docLeaf?: boolean;
}

/** The schema below the wrappers (optional, default, prefault, preprocess), and what they said. */
interface Unwrapped {
  core: z.ZodType;
  meta: DocMeta;
  defaultValue?: unknown;
}

type Def = { type: string; [k: string]: unknown };
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;

function unwrap(schema: z.ZodType): Unwrapped {
  const meta: DocMeta = {};
  let defaultValue: unknown;
  let s = schema;
  for (;;) {
    // The outermost description wins: a field's own words over those of a shared sub-schema.
    const m = (z.globalRegistry.get(s) ?? {}) as DocMeta;
    for (const k of ['description', 'docDefault', 'docType', 'docLeaf'] as const) if (meta[k] === undefined && m[k] !== undefined) (meta as Record<string, unknown>)[k] = m[k];
    const def = defOf(s);
    if (def.type === 'default') {
      if (defaultValue === undefined) defaultValue = def.defaultValue;
      s = def.innerType as z.ZodType;
    } else if (def.type === 'optional' || def.type === 'nullable' || def.type === 'prefault' || def.type === 'readonly') {
      s = def.innerType as z.ZodType;
    } else if (def.type === 'pipe') {
      s = (defOf(def.in as z.ZodType).type === 'transform' ? def.out : def.in) as z.ZodType;
    } else {
      return { core: s, meta, defaultValue };
    }
  }
}

/** A short type name for the docs. */
function typeName(u: Unwrapped): string {
  if (u.meta.docType !== undefined) return u.meta.docType;
  const def = defOf(u.core);
  const s = u.core as unknown as { format?: string | null };
  switch (def.type) {
    case 'string':
      return s.format === 'url' ? 'URL' : 'string';
    case 'number':
      return numberType(def);
    case 'boolean':
      return 'boolean';
    case 'enum':
      return Object.values(def.entries as Record<string, string>).map((v) => `\`${v}\``).join(' \\| ');
    case 'literal':
      return (def.values as unknown[]).map((v) => `\`${String(v)}\``).join(' \\| ');
    case 'array':
      return `list of ${typeName(unwrap(def.element as z.ZodType))}`;
    case 'record':
      return `map of ${typeName(unwrap(def.valueType as z.ZodType))}`;
    case 'union':
      return (def.options as z.ZodType[]).map((o) => typeName(unwrap(o))).join(' or ');
    case 'object':
      return 'object';
    default:
      return def.type;
  }
}

/** `integer 1–65535`, `integer > 0`, `number ≤ 3600`: the bounds the schema checks. */
function numberType(def: Def): string {
  const checks = ((def.checks ?? []) as Array<{ _zod: { def: { check: string; value?: number; inclusive?: boolean; format?: string } } }>).map((c) => c._zod.def);
  const int = checks.some((c) => c.check === 'number_format' && (c.format === 'safeint' || c.format === 'int32'));
  const lo = checks.find((c) => c.check === 'greater_than');
  const hi = checks.find((c) => c.check === 'less_than');
  const name = int ? 'integer' : 'number';
  if (lo !== undefined && hi !== undefined && lo.inclusive && hi.inclusive) return `${name} ${lo.value}–${hi.value}`;
  const bounds = [lo && `${lo.inclusive ? '≥' : '>'} ${lo.value}`, hi && `${hi.inclusive ? '≤' : '<'} ${hi.value}`].filter(Boolean);
  return bounds.length === 0 ? name : `${name} ${bounds.join(', ')}`;
}

function renderValue(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return `[${v.map(renderValue).join(', ')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>);
    return entries.length === 0 ? '{}' : `{${entries.map(([k, x]) => `${k}: ${renderValue(x)}`).join(', ')}}`;
  }
  return String(v);
}

function renderDefault(u: Unwrapped): string {
  if (u.meta.docDefault !== undefined) return u.meta.docDefault;
  if (u.defaultValue === undefined) return '—';
  return `\`${renderValue(u.defaultValue)}\``;
}

export class UndocumentedKeyError extends Error {
  constructor(readonly key: string) {
    super(`core/src/config.ts: the configuration key ${key} has no description; add .describe('…') to it`);
  }
}

const isContainer = (u: Unwrapped): boolean => {
  if (u.meta.docLeaf) return false;
  const def = defOf(u.core);
  if (def.type === 'object') return true;
  if (def.type === 'array') return isContainer(unwrap(def.element as z.ZodType));
  if (def.type === 'record') return isContainer(unwrap(def.valueType as z.ZodType));
  if (def.type === 'union') return def.discriminator !== undefined;
  return false;
};

function walk(schema: z.ZodType, key: string, out: ReferenceRow[]): void {
  const u = unwrap(schema);
  const def = defOf(u.core);
  const row = (): ReferenceRow => ({ key, type: typeName(u), default: renderDefault(u), meaning: u.meta.description ?? '' });
  if (!isContainer(u)) {
    if (u.meta.description === undefined) throw new UndocumentedKeyError(key);
    out.push(row());
    return;
  }
  // A container is a row of its own only when it says something as a whole.
  if (def.type === 'array') {
    if (u.meta.description !== undefined) out.push({ ...row(), key: `${key}[]`, type: 'list' });
    return walk(def.element as z.ZodType, `${key}[]`, out);
  }
  if (def.type === 'record') {
    if (u.meta.description !== undefined) out.push({ ...row(), key: `${key}.<name>`, type: 'map' });
    return walk(def.valueType as z.ZodType, `${key}.<name>`, out);
  }
  if (def.type === 'union') return walkVariants(u, key, out);
  if (u.meta.description !== undefined) out.push({ ...row(), type: 'object', default: '—' });
  for (const [name, child] of Object.entries(def.shape as Record<string, z.ZodType>)) walk(child, key === '' ? name : `${key}.${name}`, out);
}

/**
 * A discriminated union (`bus` by `kind`, `targets[]` by `protocol`): the discriminator first, then
 * each variant's keys marked with the variants they belong to; a key every variant shares in the
 * same words is listed once, unmarked.
 */
function walkVariants(u: Unwrapped, key: string, out: ReferenceRow[]): void {
  const def = defOf(u.core);
  const disc = def.discriminator as string;
  const options = def.options as z.ZodType[];
  const discKey = key === '' ? disc : `${key}.${disc}`;
  const values = options.map((o) => String((defOf(unwrap((defOf(o).shape as Record<string, z.ZodType>)[disc]!).core).values as unknown[])[0]));
  const chosen = (u.defaultValue as Record<string, unknown> | undefined)?.[disc];
  out.push({
    key: discKey,
    type: values.map((v) => `\`${v}\``).join(' \\| '),
    default: chosen === undefined ? '—' : `\`${String(chosen)}\``,
    meaning: u.meta.description ?? (() => { throw new UndocumentedKeyError(discKey); })(),
  });
  const merged = new Map<string, { row: ReferenceRow; variants: string[] }>();
  options.forEach((option, i) => {
    const rows: ReferenceRow[] = [];
    for (const [name, child] of Object.entries(defOf(option).shape as Record<string, z.ZodType>)) if (name !== disc) walk(child, `${key}.${name}`, rows);
    for (const r of rows) {
      const id = JSON.stringify([r.key, r.type, r.default, r.meaning, r.variants]);
      const seen = merged.get(id);
      if (seen !== undefined) seen.variants.push(values[i]!);
      else merged.set(id, { row: r, variants: [values[i]!] });
    }
  });
  for (const { row, variants } of merged.values()) {
    const marked = variants.length === values.length ? row.variants : `${disc} ${variants.map((v) => `\`${v}\``).join(', ')}`;
    out.push(marked === undefined ? row : { ...row, variants: marked });
  }
}

/** One row per documented key of the schema, in schema order. */
export function referenceRows(schema: z.ZodType): ReferenceRow[] {
  const out: ReferenceRow[] = [];
  walk(schema, '', out);
  return out;
}

const cell = (s: string) => s.replace(/\n\s*/g, ' ').replace(/(?<!\\)\|/g, '\\|');

/** The Markdown table of every key. */
export function referenceTable(schema: z.ZodType): string {
  const lines = ['| key | type | default | meaning |', '|---|---|---|---|'];
  for (const r of referenceRows(schema)) {
    const key = r.variants === undefined ? `\`${r.key}\`` : `\`${r.key}\` (${r.variants})`;
    lines.push(`| ${key} | ${r.type} | ${cell(r.default)} | ${cell(r.meaning)} |`);
  }
  return `${lines.join('\n')}\n`;
}
