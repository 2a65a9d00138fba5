import avro from 'avsc';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../core/src/package-root.js';
import { EVENT_TYPES, type EventType } from './events.js';
import { rabinFingerprint } from './fingerprint.js';

/** One Avro schema of one event type, as written by some version of Agate. */
export interface SchemaVersion {
  eventType: EventType;
  /** `current`, or the golden directory (`v1`, `v2`, …) that froze it. */
  version: string;
  type: avro.Type;
  canonical: string;
  fingerprint: Buffer;
}

export function schemasDir(): string {
  return join(packageRoot(), 'schemas');
}

function loadSchema(path: string, eventType: EventType, version: string): SchemaVersion {
  const type = avro.Type.forSchema(JSON.parse(readFileSync(path, 'utf8')));
  const canonical = JSON.stringify(type.schema());
  return { eventType, version, type, canonical, fingerprint: rabinFingerprint(canonical) };
}

/** The schemas the running code writes with: `schemas/<EventType>.avsc`. */
export function currentSchemas(): Map<EventType, SchemaVersion> {
  return new Map(EVENT_TYPES.map((t) => [t, loadSchema(join(schemasDir(), `${t}.avsc`), t, 'current')]));
}

/**
 * Every frozen schema version under `schemas/golden/<version>/`. Readers accept bytes written
 * with any of them, so an upgraded Agate still reads events an older one wrote.
 */
export function frozenSchemas(): SchemaVersion[] {
  const root = join(schemasDir(), 'golden');
  if (!existsSync(root)) return [];
  const out: SchemaVersion[] = [];
  for (const version of readdirSync(root).sort()) {
    for (const t of EVENT_TYPES) {
      const path = join(root, version, `${t}.avsc`);
      if (existsSync(path)) out.push(loadSchema(path, t, version));
    }
  }
  return out;
}
