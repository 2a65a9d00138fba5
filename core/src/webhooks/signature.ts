import { createHmac, timingSafeEqual } from 'node:crypto';

/*
 * The signature on Agate's webhooks, in the shape Stripe and GitHub receivers know:
 *
 *   Agate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
 *
 * The timestamp is inside the MAC so a captured request cannot be replayed later than the
 * receiver's tolerance; `v1` names the scheme so it can change without breaking receivers.
 * Several `v1=` entries may appear (during a secret rotation); one matching is enough.
 */

export const SIGNATURE_HEADER = 'Agate-Signature';

/** The header value for `body` sent at `timestampS` (unix seconds). */
export function signWebhook(secret: string, body: string, timestampS: number): string {
  return `t=${timestampS},v1=${mac(secret, timestampS, body)}`;
}

type WebhookVerification = { ok: true; timestamp: number } | { ok: false; reason: 'malformed' | 'too_old' | 'mismatch' };

/**
 * Checks an `Agate-Signature` header against the raw request body (the exact bytes received,
 * before any JSON parsing) and the shared secret.
 *
 * @example
 * import { verifyWebhook } from 'agate/core/src/webhooks/signature.js';
 * const v = verifyWebhook(process.env.AGATE_WEBHOOK_SECRET!, req.headers['agate-signature'], rawBody);
 * if (!v.ok) return res.writeHead(400).end(v.reason);
 */
export function verifyWebhook(
  secret: string,
  header: string | undefined,
  body: string | Buffer,
  options: { toleranceS?: number; nowS?: number } = {},
): WebhookVerification {
  if (header === undefined) return { ok: false, reason: 'malformed' };
  let t: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't' && /^\d{1,12}$/.test(value)) t = Number(value);
    if (key === 'v1' && /^[0-9a-f]{64}$/.test(value)) signatures.push(value);
  }
  if (t === undefined || signatures.length === 0) return { ok: false, reason: 'malformed' };
  const now = options.nowS ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t) > (options.toleranceS ?? 300)) return { ok: false, reason: 'too_old' };
  const expected = Buffer.from(mac(secret, t, typeof body === 'string' ? body : body.toString('utf8')), 'hex');
  const ok = signatures.some((s) => timingSafeEqual(Buffer.from(s, 'hex'), expected));
  return ok ? { ok: true, timestamp: t } : { ok: false, reason: 'mismatch' };
}

function mac(secret: string, t: number, body: string): string {
  return createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
}
