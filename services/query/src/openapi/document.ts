import { z } from 'zod';
import { OPERATIONS, type Operation, type ResponseDoc } from './operations.js';
import { COMPONENTS } from './schemas.js';

/*
 * The OpenAPI 3.0 document of the query API, generated from the zod descriptions in
 * operations.ts and schemas.ts. Served at /openapi.json and committed as
 * services/query/openapi.json (`npm run docs`; tools/generated-docs.test.ts fails while stale).
 */

type Json = Record<string, unknown>;

const INFO = {
  title: 'Agate query API',
  version: '1.0.0',
  description:
    "Forensic queries over Agate's audit ledger, read-only SQL for analysts, and OCSF export. Every route except /healthz, /readyz and /openapi.json needs an OIDC bearer token; roles (analyst, auditor, approver, admin) come from the claim named by query.roles.claim; a token holding none is refused unless query.roles.default_role says otherwise (SECURITY.md has the table).",
};

const componentId = (s: z.ZodType): string => (z.globalRegistry.get(s) as { id?: string } | undefined)?.id ?? '';

/** Zod's definitions become references to components.schemas; a bare safe-integer range says nothing. */
function tidy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(tidy);
  if (value === null || typeof value !== 'object') return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value as Json)) {
    if (k === '$id' || k === 'definitions' || k === '$schema') continue;
    out[k] = k === '$ref' && typeof v === 'string' ? v.replace('#/definitions/', '#/components/schemas/') : tidy(v);
  }
  if (out.type === 'integer' && out.minimum === -Number.MAX_SAFE_INTEGER && out.maximum === Number.MAX_SAFE_INTEGER) {
    delete out.minimum;
    delete out.maximum;
  }
  return out;
}

/** One schema in OpenAPI 3.0's JSON Schema dialect, as a request sends it (defaults optional). */
function jsonSchema(schema: z.ZodType): Json {
  return tidy(z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' })) as Json;
}

function parameters(op: Operation): Json[] {
  const out: Json[] = [];
  for (const [where, object] of [['path', op.params], ['query', op.query]] as const) {
    if (object === undefined) continue;
    for (const [name, field] of Object.entries(object.shape as Record<string, z.ZodType>)) {
      const { description, example, ...schema } = jsonSchema(field);
      const required = where === 'path' || !field.safeParse(undefined).success;
      const p: Json = { name, in: where, required };
      if (description !== undefined) p.description = description;
      p.schema = schema;
      if (example !== undefined) p.example = example;
      if (schema.type === 'array') Object.assign(p, { style: 'form', explode: true });
      out.push(p);
    }
  }
  return out;
}

function content(media: Record<string, z.ZodType>): Json {
  return Object.fromEntries(Object.entries(media).map(([type, schema]) => [type, { schema: jsonSchema(schema) }]));
}

function response(r: ResponseDoc | 'error'): Json {
  if (r === 'error') return { $ref: '#/components/responses/Error' };
  return r.content === undefined ? { description: r.description } : { description: r.description, content: content(r.content) };
}

/** `/v1/sessions/:id` → `/v1/sessions/{id}`. */
export const openApiPath = (routerPath: string): string => routerPath.replace(/:(\w+)/g, '{$1}');

function operation(op: Operation): Json {
  const out: Json = { operationId: op.operationId };
  if (op.public) out.security = [];
  out.summary = op.summary;
  if (op.description !== undefined) out.description = op.description;
  const params = parameters(op);
  if (params.length > 0) out.parameters = params;
  if (op.body !== undefined) out.requestBody = { required: op.body.required, content: content(op.body.content) };
  out.responses = Object.fromEntries(Object.entries(op.responses).map(([status, r]) => [status, response(r)]));
  return out;
}

export function openApiDocument(operations: readonly Operation[] = OPERATIONS): Json {
  const paths: Record<string, Json> = {};
  for (const op of operations) (paths[openApiPath(op.path)] ??= {})[op.method.toLowerCase()] = operation(op);
  // Registry mode turns each component into one schema that refers to the others by id.
  const all = z.toJSONSchema(z.globalRegistry, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any', uri: (id) => `#/components/schemas/${id}` }).schemas;
  const schemas: Json = {};
  for (const s of COMPONENTS) schemas[componentId(s)] = tidy(all[componentId(s)]);
  return {
    openapi: '3.0.3',
    info: INFO,
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An OIDC id-token from a trusted issuer.' } },
      responses: { Error: { description: 'an error with a stable code', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } } },
      schemas,
    },
  };
}

/** The document as served and committed: two-space JSON with a final newline. */
export function openApiText(): string {
  return `${JSON.stringify(openApiDocument(), null, 2)}\n`;
}
