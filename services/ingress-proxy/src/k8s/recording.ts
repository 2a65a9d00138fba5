import { hash, randomUUID } from 'node:crypto';
import { nowMicros, type Command, type Response, type ResponseStatus } from '../../../../schemas/src/events.js';
import type { Masker } from '../masking/masker.js';
import { maskDocument, maskObject, type FieldRule } from './json-mask.js';
import { maskRequestBody, type ReadBody } from './request-body.js';
import type { RequestInfo } from './request-info.js';
import { summarize, watchEventRef, type ObjectRef } from './summary.js';

/** How much of each body the audit trail keeps, and the rules always applied to it. */
export interface K8sRecording {
  /** Objects of a response kept in the Response sample. */
  sampleRows: number;
  /** Each recorded value (a request body, an object's JSON) is cut to this many characters. */
  valueChars: number;
  audit: Masker;
  fields: readonly FieldRule[];
}

const RESPONSE_COLUMNS = ['kind', 'namespace', 'name', 'object'];
const WATCH_COLUMNS = ['type', 'kind', 'namespace', 'name', 'object'];

export function sha256(bytes: Buffer): string {
  return `sha256:${hash('sha256', bytes, 'hex')}`;
}

/**
 * The recorded copy of a request body: masked with the audit rules (Secret data, the configured
 * fields, the audit set) as the object its request addresses, and cut to the cap. A body Agate
 * cannot read (protobuf, CBOR, invalid JSON) is described, never copied: it could carry Secret
 * data the masker cannot see.
 */
export function bodySample(read: ReadBody, info: RequestInfo, rec: K8sRecording): string {
  if (read.kind === 'opaque') return `[${read.why}, not recorded]`;
  maskRequestBody(read, info, { fields: rec.fields, masker: rec.audit });
  return cut(JSON.stringify(read.doc) ?? 'null', rec.valueChars);
}

interface Delivered {
  code: number;
  /** The bytes the client received, all of them (for the digest) or the count only. */
  bytes: number;
  digest: string | null;
  /** The parsed body when it was JSON and within the cap; the recorder masks it for the record. */
  doc: unknown;
  /** Values masked in what the client received. */
  maskedForClient: number;
  started: number;
  contentType: string | undefined;
}

/** The Response event of a non-watch request. `doc` is masked in place with the audit rules. */
export function responseEvent(command: Command, d: Delivered, rec: K8sRecording): Response {
  const ok = d.code < 400;
  let kind = '';
  let objects: ObjectRef[] = [];
  let errorCode: string | null = ok ? null : String(d.code);
  let errorMessage: string | null = null;
  if (d.doc !== undefined) {
    // Only what is kept is masked (the sampled objects, an error's message): a list of thousands
    // of objects costs one parse, not a walk of every value through every detector.
    const s = summarize(d.doc);
    for (const o of s.objects.slice(0, rec.sampleRows)) maskObject(o.value, o.kind, { fields: rec.fields, masker: rec.audit });
    kind = s.kind;
    objects = s.objects;
    if (s.status !== undefined && !ok) {
      errorCode = s.status.reason || errorCode;
      errorMessage = rec.audit.maskText(s.status.message).text;
    }
  }
  const status: ResponseStatus = ok ? 'ok' : 'error';
  return {
    type: 'Response', event_id: randomUUID(), time: nowMicros(), session_id: command.session_id, command_id: command.event_id,
    status, command_tag: `${d.code}${kind === '' ? '' : ` ${kind}`}`, rows: objects.length, bytes: d.bytes, duration_us: nowMicros() - d.started,
    error_code: errorCode, error_message: errorMessage, digest: d.digest,
    columns: objects.length === 0 ? [] : RESPONSE_COLUMNS,
    sample: objects.slice(0, rec.sampleRows).map((o) => [o.kind, o.namespace, o.name, cut(JSON.stringify(o.value), rec.valueChars)]),
    masked_values: d.maskedForClient,
  };
}

/**
 * One watch event as delivered: its type and object, masked with the audit rules. kubectl asks
 * for watch events as Tables (`as=Table`): then the objects are the table's rows.
 */
export function watchEvent(command: Command, doc: unknown, line: Buffer, maskedForClient: number, rec: K8sRecording): Response {
  maskDocument(doc, { fields: rec.fields, masker: rec.audit });
  const ev = watchEventRef(doc);
  const o = ev.object;
  const objects = o === undefined ? [] : o.kind === 'Table' ? summarize(o.value).objects : [o];
  const sample: (string | null)[][] = objects.slice(0, Math.max(1, rec.sampleRows)).map((x) => [ev.type, x.kind, x.namespace, x.name, cut(JSON.stringify(x.value), rec.valueChars)]);
  return {
    type: 'Response', event_id: randomUUID(), time: nowMicros(), session_id: command.session_id, command_id: command.event_id,
    status: ev.type === 'ERROR' ? 'error' : 'ok', command_tag: `watch ${ev.type || 'event'}`, rows: objects.length, bytes: line.length, duration_us: 0,
    error_code: null, error_message: null, digest: sha256(line), columns: WATCH_COLUMNS,
    sample: sample.length > 0 ? sample : [[ev.type, '', '', '', null]], masked_values: maskedForClient,
  };
}

/** The closing Response of a watch: how many events and bytes, and a digest of the whole stream. */
export function watchEnd(command: Command, tag: string, events: number, bytes: number, digest: string, started: number, error: string | null): Response {
  return {
    type: 'Response', event_id: randomUUID(), time: nowMicros(), session_id: command.session_id, command_id: command.event_id,
    status: error === null ? 'ok' : 'error', command_tag: tag, rows: events, bytes, duration_us: nowMicros() - started,
    error_code: error === null ? null : 'WATCH_ABORTED', error_message: error, digest, columns: [], sample: [], masked_values: 0,
  };
}

/** A request Agate answered itself: refused, or failed before the API server replied. */
export function refusedEvent(command: Command, status: 'refused' | 'error', code: string, message: string): Response {
  return {
    type: 'Response', event_id: randomUUID(), time: nowMicros(), session_id: command.session_id, command_id: command.event_id,
    status, command_tag: null, rows: 0, bytes: 0, duration_us: 0, error_code: code, error_message: message,
    digest: null, columns: [], sample: [], masked_values: 0,
  };
}

export function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}
