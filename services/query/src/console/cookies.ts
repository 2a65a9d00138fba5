/** The cookies the console sets; both HttpOnly, neither readable by page scripts. */
export const SESSION_COOKIE = 'agate_console';
export const FLOW_COOKIE = 'agate_console_login';

/** Cookie name → value from a Cookie header; malformed pairs are skipped. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of (header ?? '').split(';')) {
    const part = raw.trim();
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (!out.has(name)) out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

interface CookieOptions {
  /** Strict for the session; Lax for the sign-in flow, whose callback is a top-level navigation from the provider. */
  sameSite: 'Strict' | 'Lax';
  secure: boolean;
  /** Seconds; 0 deletes the cookie. */
  maxAge: number;
}

/** A Set-Cookie value scoped to the console's path. Values are base64url ids, never user input. */
export function serializeCookie(name: string, value: string, o: CookieOptions): string {
  return `${name}=${value}; Path=/ui/; HttpOnly; SameSite=${o.sameSite}; Max-Age=${o.maxAge}${o.secure ? '; Secure' : ''}`;
}
