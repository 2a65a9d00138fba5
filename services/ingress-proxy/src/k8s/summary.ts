/** What a response body says it carries: its kind, the objects it names, an error Status's reason. */
interface BodySummary {
  kind: string;
  /** One per object: kind, namespace, name (lists: every item; tables: every row's object). */
  objects: ObjectRef[];
  /** From a `Status` body: its reason and message. */
  status?: { reason: string; message: string };
}

export interface ObjectRef {
  kind: string;
  namespace: string;
  name: string;
  /** The object itself (already masked by the caller), for the recorded sample. */
  value: unknown;
}

export function summarize(doc: unknown): BodySummary {
  if (!isObject(doc)) return { kind: '', objects: [] };
  const kind = str(doc.kind);
  if (kind === 'Status') return { kind, objects: [], status: { reason: str(doc.reason), message: str(doc.message) } };
  if (Array.isArray(doc.items)) {
    const itemKind = kind.endsWith('List') ? kind.slice(0, -4) : '';
    return { kind, objects: doc.items.filter(isObject).map((item) => ref(item, itemKind)) };
  }
  if (kind === 'Table' && Array.isArray(doc.rows)) {
    const objects = doc.rows.filter(isObject).map((row) => (isObject(row.object) ? ref(row.object, '') : undefined)).filter((r): r is ObjectRef => r !== undefined);
    return { kind, objects };
  }
  return { kind, objects: isObject(doc.metadata) ? [ref(doc, kind)] : [] };
}

/** A watch event's type and object: `{"type":"ADDED","object":{…}}`. */
export function watchEventRef(doc: unknown): { type: string; object: ObjectRef | undefined } {
  if (!isObject(doc)) return { type: '', object: undefined };
  return { type: str(doc.type), object: isObject(doc.object) ? ref(doc.object, '') : undefined };
}

function ref(obj: Record<string, unknown>, impliedKind: string): ObjectRef {
  const meta = isObject(obj.metadata) ? obj.metadata : {};
  return { kind: str(obj.kind) || impliedKind, namespace: str(meta.namespace), name: str(meta.name), value: obj };
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
