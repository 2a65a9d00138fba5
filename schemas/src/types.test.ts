import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { packageRoot } from '../../core/src/package-root.js';
import { EVENT_TYPES } from './events.js';

/*
 * The TypeScript event types in events.ts against the Avro schemas in schemas/*.avsc, field by
 * field, through the TypeScript checker: same names, same nullability, same enum symbols, same
 * element types. The .avsc files are the contract; a field added to one side only fails here.
 * Two liberties the TS side may take: a single string literal where Avro says string (the type
 * pins what the schema leaves open, e.g. ApiAuthenticationFailed.protocol 'http'), and an
 * optional property for a field whose schema has a default (old writers left it out).
 */

type AvroType = string | AvroType[] | { type: string; name?: string; symbols?: string[]; items?: AvroType; values?: AvroType; fields?: AvroField[]; logicalType?: string };
interface AvroField { name: string; type: AvroType; default?: unknown }

/** A canonical spelling both sides are reduced to. */
function avroShape(t: AvroType, records: Map<string, AvroField[]>): string {
  if (Array.isArray(t)) return t.map((m) => avroShape(m, records)).sort().join(' | ');
  if (typeof t === 'string') {
    if (['int', 'long', 'float', 'double'].includes(t)) return 'number';
    if (t === 'string' || t === 'boolean' || t === 'null') return t;
    if (records.has(t)) return `record ${t}`;
    throw new Error(`unhandled Avro type ${t}`);
  }
  switch (t.type) {
    case 'enum': return `enum(${[...t.symbols!].sort().join(',')})`;
    case 'array': return `array<${avroShape(t.items!, records)}>`;
    case 'map': return `map<${avroShape(t.values!, records)}>`;
    case 'record': records.set(t.name!, t.fields!); return `record ${t.name}`;
    default: return avroShape(t.type, records);
  }
}

function tsShape(type: ts.Type, checker: ts.TypeChecker): string {
  if (type.isUnion()) {
    const members = type.types;
    const literals = members.filter((m) => m.isStringLiteral());
    if (members.every((m) => m.flags & ts.TypeFlags.BooleanLiteral)) return 'boolean';
    const rest = members.filter((m) => !m.isStringLiteral()).map((m) => tsShape(m, checker));
    if (literals.length > 1) rest.push(`enum(${literals.map((l) => (l as ts.StringLiteralType).value).sort().join(',')})`);
    else if (literals.length === 1) rest.push(`literal ${(literals[0] as ts.StringLiteralType).value}`);
    return rest.sort().join(' | ');
  }
  if (type.isStringLiteral()) return `literal ${type.value}`;
  if (type.flags & ts.TypeFlags.String) return 'string';
  if (type.flags & ts.TypeFlags.Number) return 'number';
  if (type.flags & (ts.TypeFlags.Boolean | ts.TypeFlags.BooleanLiteral)) return 'boolean';
  if (type.flags & ts.TypeFlags.Null) return 'null';
  if (checker.isArrayType(type)) return `array<${tsShape(checker.getTypeArguments(type as ts.TypeReference)[0]!, checker)}>`;
  const index = checker.getIndexInfoOfType(type, ts.IndexKind.String);
  if (index !== undefined) return `map<${tsShape(index.type, checker)}>`;
  const name = type.aliasSymbol?.name ?? type.getSymbol()?.name;
  if (name !== undefined && type.getProperties().length > 0) return `record ${name}`;
  return checker.typeToString(type);
}

/** The TS side accepts the Avro side: equal, or a string literal standing for Avro's string. */
function accepts(avro: string, tsSide: string): boolean {
  if (avro === tsSide) return true;
  const a = avro.split(' | ');
  const t = tsSide.split(' | ');
  return a.length === t.length && a.every((x, i) => x === t[i] || (x === 'string' && t[i]!.startsWith('literal ')));
}

const root = packageRoot();
const program = ts.createProgram([join(root, 'schemas/src/events.ts')], { strict: true, noEmit: true, skipLibCheck: true, types: [] });
const checker = program.getTypeChecker();
const source = program.getSourceFile(join(root, 'schemas/src/events.ts'))!;
const declared = new Map<string, ts.Type>();
ts.forEachChild(source, (node) => {
  if (ts.isInterfaceDeclaration(node)) declared.set(node.name.text, checker.getTypeAtLocation(node.name));
});

/** Field-by-field differences between an Avro record and the TS type of the same name. */
function differences(name: string, fields: AvroField[], records: Map<string, AvroField[]>): string[] {
  const type = declared.get(name);
  if (type === undefined) return [`${name}: no interface ${name} in events.ts`];
  const problems: string[] = [];
  const props = new Map(checker.getPropertiesOfType(type).filter((p) => p.name !== 'type').map((p) => [p.name, p]));
  for (const f of fields) {
    const prop = props.get(f.name);
    if (prop === undefined) { problems.push(`${name}.${f.name}: in the .avsc, not in events.ts`); continue; }
    props.delete(f.name);
    const optional = (prop.flags & ts.SymbolFlags.Optional) !== 0;
    if (optional && f.default === undefined) problems.push(`${name}.${f.name}: optional in events.ts but the .avsc gives no default`);
    let t = checker.getTypeOfSymbol(prop);
    // Optional means it may be left out (undefined); whether it may be null is kept.
    const nullable = optional && t.isUnion() && t.types.some((m) => (m.flags & ts.TypeFlags.Null) !== 0);
    if (optional) t = checker.getNonNullableType(t);
    const want = avroShape(f.type, records);
    const have = nullable ? [...tsShape(t, checker).split(' | '), 'null'].sort().join(' | ') : tsShape(t, checker);
    if (!accepts(want, have)) problems.push(`${name}.${f.name}: .avsc ${want}, events.ts ${have}`);
  }
  for (const extra of props.keys()) problems.push(`${name}.${extra}: in events.ts, not in the .avsc`);
  return problems;
}

const types = suite('events.ts matches schemas/*.avsc');

for (const eventType of EVENT_TYPES) {
  types(eventType, () => {
    const schema = JSON.parse(readFileSync(join(root, 'schemas', `${eventType}.avsc`), 'utf8')) as { name: string; fields: AvroField[] };
    const records = new Map<string, AvroField[]>();
    const problems = differences(schema.name, schema.fields, records);
    // Named records inside (Identity) are compared the same way.
    for (const [name, fields] of records) problems.push(...differences(name, fields, new Map()));
    assert.equal(problems, []);
  });
}

types('the comparison catches a difference (the guard trips)', () => {
  const records = new Map<string, AvroField[]>();
  const fields: AvroField[] = [
    { name: 'event_id', type: 'string' }, { name: 'time', type: 'long' }, { name: 'session_id', type: 'string' },
    { name: 'reason', type: ['null', 'string'] }, { name: 'commands', type: 'long' }, { name: 'extra', type: 'string' },
  ];
  assert.equal(differences('SessionClosed', fields, records), [
    'SessionClosed.reason: .avsc null | string, events.ts string',
    'SessionClosed.extra: in the .avsc, not in events.ts',
    'SessionClosed.duration_us: in events.ts, not in the .avsc',
  ]);
});

types.run();
