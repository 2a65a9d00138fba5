import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Hop-by-hop headers (RFC 9110 §7.6.1) never cross a proxy. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate']);

/**
 * Whether a header asks the API server to act as someone else: `Impersonate-*` (`kubectl --as`),
 * or the front-proxy headers (`X-Remote-User`, `-Group`, `-Uid`, `-Extra-*`, kubeadm's names),
 * which an API server trusting Agate's certificate as a front proxy would take as the identity.
 * Node gives header names in lower case.
 */
function asSomeoneElse(name: string): boolean {
  return name.startsWith('impersonate-') || name.startsWith('x-remote-');
}

/** Whether the client asks the API server to act as someone else (refused: it would use Agate's credential). */
export function impersonates(headers: IncomingHttpHeaders): boolean {
  return Object.keys(headers).some(asSomeoneElse);
}

/**
 * The headers Agate sends upstream: the client's, minus its token, hop-by-hop headers and
 * compression (Agate reads every body), with protobuf taken out of Accept (only JSON can be
 * masked and recorded), plus Agate's own credential.
 */
export function upstreamHeaders(client: IncomingHttpHeaders, credential: Record<string, string>, bodyLength: number | undefined): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(client)) {
    if (v === undefined || HOP_BY_HOP.has(k) || k === 'authorization' || k === 'host' || k === 'accept-encoding' || k === 'content-length' || asSomeoneElse(k)) continue;
    out[k] = v;
  }
  if (typeof client.accept === 'string') out.accept = jsonOnlyAccept(client.accept);
  if (bodyLength !== undefined && (bodyLength > 0 || client['content-length'] !== undefined)) out['content-length'] = String(bodyLength);
  for (const [k, v] of Object.entries(credential)) out[k.toLowerCase()] = v;
  return out;
}

const BINARY_MEDIA = /protobuf|cbor/i;

/** Drops the binary media types (protobuf, CBOR) from an Accept header; nothing left means JSON. */
export function jsonOnlyAccept(accept: string): string {
  // Protobuf and CBOR (newer API servers) are binary encodings Agate cannot read or mask.
  // Most requests ask for neither: sent on as they are, without splitting every one.
  if (!BINARY_MEDIA.test(accept)) return accept;
  const kept = accept.split(',').map((s) => s.trim()).filter((s) => s !== '' && !BINARY_MEDIA.test(s));
  return kept.length === 0 ? 'application/json' : kept.join(', ');
}

/**
 * Upstream response headers for the client, as the flat name, value, … list `writeHead` takes:
 * read from the answer's raw list (in its order, repeated headers kept apart), which spares
 * Node building its lower-cased header object for every answer. `length` replaces the body
 * length when Agate rewrote the body.
 */
export function clientHeaders(raw: readonly string[], length?: number): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(k) || (length !== undefined && k === 'content-length')) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  if (length !== undefined) out.push('content-length', String(length));
  return out;
}

/** The first value of header `name` (lower case) in a raw name, value, … list, as Node's header object keeps it. */
export function rawHeader(raw: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.length === name.length && raw[i]!.toLowerCase() === name) return raw[i + 1];
  }
  return undefined;
}

/**
 * The raw request head of an upgrade, rebuilt for the API server. `protocols`: a WebSocket Agate
 * reads (stream-tap.ts) offers only these subprotocols and no extension (compression would
 * hide the channels).
 */
export function upgradeHead(method: string, path: string, rawHeaders: readonly string[], host: string, credential: Record<string, string>, protocols?: readonly string[]): string {
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${host}`];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const k = rawHeaders[i]!;
    const lk = k.toLowerCase();
    // No body framing: an upgrade request with a body is refused before this (engine.ts).
    if (lk === 'authorization' || lk === 'host' || asSomeoneElse(lk) || lk === 'proxy-authorization' || lk === 'content-length' || lk === 'transfer-encoding' || lk === 'expect') continue;
    if (protocols !== undefined && (lk === 'sec-websocket-protocol' || lk === 'sec-websocket-extensions')) continue;
    lines.push(`${k}: ${rawHeaders[i + 1]!.replace(/[\r\n]/g, '')}`);
  }
  if (protocols !== undefined) lines.push(`Sec-WebSocket-Protocol: ${protocols.join(', ')}`);
  for (const [k, v] of Object.entries(credential)) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}
