import { isIPv6 } from 'node:net';

/**
 * The one spelling of a `-L` tunnel's destination host that policy decides on and Agate connects
 * to. The target resolves what it is given with getaddrinfo, which reads IPv4 the way
 * `inet_aton` does: `127.1`, `2130706433`, `0x7f000001` and `0177.0.0.1` are all 127.0.0.1, and
 * `0.0.0.0` connects to the host itself. A rule naming `127.0.0.1:*` must hold for each, so IP
 * literals (IPv4 in every such form, IPv6 in any notation, IPv4-mapped IPv6) become their
 * canonical text, the unspecified address its loopback, and the names that mean loopback on
 * every system (`localhost`, `*.localhost`, Debian's `ip6-localhost`…) the loopback address.
 * Any other name is decided as named (lower case, no trailing dot): where it leads depends on the
 * target's resolver, which Agate cannot see.
 */
export function canonicalTcpHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.') && h.length > 1) h = h.slice(0, -1);
  const v4 = inetAton(h);
  if (v4 !== undefined) return v4 === '0.0.0.0' ? '127.0.0.1' : v4;
  const v6 = canonicalIPv6(h);
  if (v6 !== undefined) return v6;
  if (h === 'localhost' || h.endsWith('.localhost') || h === 'localhost.localdomain') return '127.0.0.1';
  if (h === 'ip6-localhost' || h === 'ip6-loopback' || h === 'localhost6' || h === 'localhost6.localdomain6') return '::1';
  return h;
}

/** `inet_aton`'s reading of a, a.b, a.b.c or a.b.c.d (each part decimal, 0x hex or 0 octal); undefined when it is not one. */
function inetAton(h: string): string | undefined {
  const parts = h.split('.');
  if (parts.length > 4 || !parts.every((p) => /^(0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*)$/.test(p))) return undefined;
  const values = parts.map((p) => (p.startsWith('0x') ? (p.length === 2 ? 0 : parseInt(p.slice(2), 16)) : p.length > 1 && p.startsWith('0') ? parseInt(p, 8) : Number(p)));
  // The last part fills the bytes the others leave: a.b.c takes c as 16 bits, a as 32.
  const lastBytes = 5 - parts.length;
  const last = values[values.length - 1]!;
  if (values.slice(0, -1).some((v) => v > 255) || last >= 2 ** (8 * lastBytes)) return undefined;
  let n = 0;
  for (const v of values.slice(0, -1)) n = n * 256 + v;
  n = n * 2 ** (8 * lastBytes) + last;
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** An IPv6 literal (a zone id dropped) in its compressed form; IPv4-mapped as IPv4; `::` as `::1`. */
function canonicalIPv6(h: string): string | undefined {
  const bare = h.replace(/%.*$/, '');
  if (!isIPv6(bare)) return undefined;
  const text = new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(text);
  if (mapped !== null) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    const v4 = [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
    return v4 === '0.0.0.0' ? '127.0.0.1' : v4;
  }
  return text === '::' ? '::1' : text;
}

/** What every spelling of "all interfaces" becomes as a `-R` bind address. */
const WILDCARD_BIND = '0.0.0.0';

/**
 * The one spelling of a `-R` listener's bind address that policy decides on and the target is
 * asked to listen on. sshd (with `GatewayPorts clientspecified`) reads it unlike a `-L` host: an
 * empty address and `*` listen on every interface, as do the unspecified addresses (`0.0.0.0` in
 * any inet_aton form, `::`, `[::]`, `::ffff:0.0.0.0`). Those all become {@link WILDCARD_BIND},
 * never loopback, so a rule allowing `127.0.0.1:*` opens no listener to the network; the rest is
 * spelt as a `-L` host ({@link canonicalTcpHost}: `localhost`, `127.1` → `127.0.0.1`).
 */
export function canonicalBindHost(address: string): string {
  let h = address.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h === '' || h === '*' || inetAton(h) === '0.0.0.0') return WILDCARD_BIND;
  const bare = h.replace(/%.*$/, '');
  if (isIPv6(bare)) {
    const text = new URL(`http://[${bare}]/`).hostname.slice(1, -1);
    if (text === '::' || text === '::ffff:0:0') return WILDCARD_BIND;
  }
  return canonicalTcpHost(h);
}
