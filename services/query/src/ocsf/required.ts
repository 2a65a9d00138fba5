import { AgateError, ErrorCode } from '../../../../core/src/errors.js';

/**
 * The attributes OCSF 1.x marks as required for the classes Agate emits, written from the
 * schema's class definitions (base event, category, class, and the objects Agate fills in).
 * A path names a nested attribute; `atLeastOne` lists alternatives of which one must be set.
 */
export interface ClassRequirements {
  name: string;
  category_uid: number;
  required: readonly string[];
  atLeastOne: readonly (readonly string[])[];
}

/** Every event of every class: the base event's required attributes and those of metadata. */
export const BASE_REQUIRED: readonly string[] = [
  'activity_id', 'category_uid', 'class_uid', 'type_uid', 'severity_id', 'time',
  'metadata', 'metadata.version', 'metadata.product', 'metadata.product.name', 'metadata.product.vendor_name',
];

export const CLASS_REQUIRED: Readonly<Record<number, ClassRequirements>> = {
  1007: { name: 'Process Activity', category_uid: 1, required: ['actor', 'device', 'device.type_id', 'process'], atLeastOne: [['actor.user', 'actor.process'], ['process.cmd_line', 'process.name', 'process.pid']] },
  3002: { name: 'Authentication', category_uid: 3, required: ['user'], atLeastOne: [['service', 'dst_endpoint'], ['user.name', 'user.uid']] },
  6003: { name: 'API Activity', category_uid: 6, required: ['actor', 'api', 'api.operation', 'src_endpoint'], atLeastOne: [['actor.user', 'actor.process', 'actor.session']] },
  6005: { name: 'Datastore Activity', category_uid: 6, required: ['actor', 'src_endpoint'], atLeastOne: [['database', 'databucket', 'table'], ['actor.user', 'actor.process', 'actor.session']] },
};

function present(event: unknown, path: string): boolean {
  let v: unknown = event;
  for (const key of path.split('.')) {
    if (v === null || typeof v !== 'object') return false;
    v = (v as Record<string, unknown>)[key];
  }
  return v !== undefined && v !== null && v !== '';
}

/** What an event lacks for its class; empty when it is complete. */
export function missingAttributes(event: Record<string, unknown>): string[] {
  const missing = BASE_REQUIRED.filter((p) => !present(event, p));
  const cls = CLASS_REQUIRED[Number(event.class_uid)];
  if (cls === undefined) return [...missing, `class_uid (${String(event.class_uid)} is not a class Agate emits)`];
  missing.push(...cls.required.filter((p) => !present(event, p)));
  for (const group of cls.atLeastOne) if (!group.some((p) => present(event, p))) missing.push(`one of ${group.join(' | ')}`);
  if (event.category_uid !== cls.category_uid) missing.push(`category_uid = ${cls.category_uid}`);
  if (event.type_uid !== Number(event.class_uid) * 100 + Number(event.activity_id)) missing.push('type_uid = class_uid * 100 + activity_id');
  return missing;
}

export function assertOcsf(event: Record<string, unknown>): void {
  const missing = missingAttributes(event);
  if (missing.length > 0) throw new AgateError(ErrorCode.OCSF_INVALID, `OCSF class ${String(event.class_uid)} event lacks: ${missing.join(', ')}`);
}
