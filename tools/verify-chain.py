#!/usr/bin/env python3
"""An independent check of Agate's ledger, written from docs/ledger.md alone (Python 3.8+, stdlib only).

Reads ledger rows exported as JSON lines (the query in docs/ledger.md, "Checking the ledger
without Agate"), recomputes every record's link hash and the Merkle tree over the records, and
compares the tree and chain head with every signed checkpoint given whose Ed25519 signature
checks with the auditor's verifier key. Reports the first record where the ledger departs from
its own chain or from what was signed, in the words `agate verify` uses:

    chain embedded: OK, records 1..30 verified (30); matches signed checkpoints 10, 30
    chain embedded: BROKEN at record 7 (event 5f0c...): its hash does not match its content [altered]

Usage:
    verify-chain.py ROWS.jsonl [--checkpoint FILE]... [--checkpoint-dir DIR]... [--key KEY|FILE] [--json]

Exit status: 0 every chain holds, 1 a chain is broken, 2 the input could not be read.
"""

import argparse
import base64
import hashlib
import json
import os
import re
import struct
import sys

# ---------------------------------------------------------------------------------------------
# Ed25519 signature verification (RFC 8032, section 5.1.7), on the twisted Edwards curve
#   -x^2 + y^2 = 1 + d x^2 y^2  over GF(2^255 - 19),
# with points in extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z, x*y = T/Z.

P = 2 ** 255 - 19
L = 2 ** 252 + 27742317777372353535851937790883648493  # the order of the base point
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)  # a square root of -1 mod P


def _inv(a):
    return pow(a, P - 2, P)


def _add(p, q):
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * D * t1 * t2 % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = b - a, dd - c, dd + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(k, p):
    out = (0, 1, 1, 0)  # the neutral element
    while k > 0:
        if k & 1:
            out = _add(out, p)
        p = _add(p, p)
        k >>= 1
    return out


def _same(p, q):
    # x1/z1 == x2/z2 and y1/z1 == y2/z2, without inverting.
    return (p[0] * q[2] - q[0] * p[2]) % P == 0 and (p[1] * q[2] - q[1] * p[2]) % P == 0


def _decode_point(b):
    """The point a 32-byte encoding names (y little-endian, the top bit x's sign), or None."""
    if len(b) != 32:
        return None
    n = int.from_bytes(b, 'little')
    sign, y = n >> 255, n & ((1 << 255) - 1)
    if y >= P:
        return None
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x2 = u * _inv(v) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if x == 0 and sign == 1:
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


BASE = _decode_point((4 * _inv(5) % P).to_bytes(32, 'little'))  # y = 4/5, x even


def ed25519_verify(public_key, message, signature):
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = _decode_point(public_key)
    r = _decode_point(signature[:32])
    s = int.from_bytes(signature[32:], 'little')
    if a is None or r is None or s >= L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), 'little') % L
    return _same(_mul(s, BASE), _add(r, _mul(h, a)))


# ---------------------------------------------------------------------------------------------
# Signed notes (c2sp.org/signed-note) and checkpoints (c2sp.org/tlog-checkpoint), as
# docs/ledger.md describes them.

class Unusable(Exception):
    """A checkpoint that is not used: unsigned by the key, malformed, another log's."""


def parse_verifier_key(text):
    """name+hex(key id)+base64(0x01 || public key) -> (name, key id, public key)."""
    parts = text.strip().split('+', 2)
    if len(parts) != 3:
        raise ValueError('a verifier key is name+id+base64')
    name, kid, b64 = parts
    raw = base64.b64decode(b64, validate=True)
    if len(raw) != 33 or raw[0] != 0x01:
        raise ValueError('not an Ed25519 verifier key')
    key_id = hashlib.sha256(name.encode() + b'\n' + raw).digest()[:4]
    if key_id.hex() != kid.lower():
        raise ValueError('the key id does not match the name and key')
    return name, key_id, raw[1:]


def open_checkpoint(note, key):
    """The checkpoint a note signed by `key` carries: {origin, size, root, head}."""
    name, key_id, public_key = key
    split = note.rfind('\n\n')
    if split < 0 or not note.endswith('\n'):
        raise Unusable('not a signed note')
    text = note[:split + 1]
    signed = False
    for line in note[split + 2:-1].split('\n'):
        m = re.fullmatch('\u2014 (\\S+) ([A-Za-z0-9+/=]+)', line)
        if m is None:
            raise Unusable('malformed signature line')
        sig = base64.b64decode(m.group(2))
        if m.group(1) != name or sig[:4] != key_id:
            continue  # another key's signature
        if not ed25519_verify(public_key, text.encode(), sig[4:]):
            raise Unusable('the signature by %s does not verify' % name)
        signed = True
    if not signed:
        raise Unusable('no signature by the trusted key')
    lines = text[:-1].split('\n')
    if len(lines) < 3 or not re.fullmatch('0|[1-9][0-9]*', lines[1]):
        raise Unusable('not a checkpoint')
    cp = {'origin': lines[0], 'size': int(lines[1]), 'root': _hash(lines[2]), 'head': None}
    for ext in lines[3:]:
        if ext.startswith('chain-head '):
            cp['head'] = _hash(ext[len('chain-head '):])
    return cp


def _hash(b64):
    h = base64.b64decode(b64, validate=True)
    if len(h) != 32:
        raise Unusable('not a base64 SHA-256 hash')
    return h


# ---------------------------------------------------------------------------------------------
# The chain and the tree.

GENESIS = bytes(32)


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s):
    b = s.encode('utf-8', 'surrogateescape')
    return _varint(len(b)) + b


def leaf_hash(payload):
    return hashlib.sha256(b'\x00' + payload).digest()


def node_hash(left, right):
    return hashlib.sha256(b'\x01' + left + right).digest()


def link_hash(prev, row, leaf):
    """SHA-256(0x02 || prev || seq || event_id || event_type || time || session_id || subject || target || text || body || leaf)."""
    return hashlib.sha256(b''.join([
        b'\x02', prev, struct.pack('<Q', row['seq']), _string(row['event_id']), _string(row['event_type']),
        struct.pack('<q', row['time']), _string(row['session_id']), _string(row['subject']),
        _string(row['target']), _string(row['text']), _string(row['body']), leaf,
    ])).digest()


class Tree:
    """The RFC 9162 tree over the leaves so far, kept as the roots of its complete subtrees."""

    def __init__(self):
        self.size = 0
        self.stack = []  # [(leaves, hash)], largest first

    def push(self, leaf):
        self.size += 1
        node, width = leaf, 1
        while self.stack and self.stack[-1][0] == width:
            node, width = node_hash(self.stack.pop()[1], node), width * 2
        self.stack.append((width, node))

    def root(self):
        if not self.stack:
            return hashlib.sha256(b'').digest()
        node = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            node = node_hash(left, node)
        return node


def read_rows(path):
    """Rows by chain. String columns as exported; hash and prev_hash hex; payload base64; seq and time integers (or quoted)."""
    chains = {}
    with open(path, encoding='utf-8', errors='surrogateescape') as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                row = {k: r[k] for k in ('chain_id', 'event_id', 'event_type', 'session_id', 'subject', 'target', 'text', 'body')}
                row['seq'], row['time'] = int(r['seq']), int(r['time'])
                row['hash'], row['prev_hash'] = bytes.fromhex(r['hash']), bytes.fromhex(r['prev_hash'])
                row['payload'] = base64.b64decode(r['payload'], validate=True)
            except (ValueError, KeyError, TypeError) as err:
                _input_error('%s:%d: not a ledger row (%s)' % (path, number, err))
            chains.setdefault(row['chain_id'], []).append(row)
    for rows in chains.values():
        rows.sort(key=lambda r: (r['seq'], r['event_id']))  # the store's own order
    return chains


def _input_error(message):
    print(message, file=sys.stderr)
    sys.exit(2)


def verify_chain(chain_id, rows, checkpoints):
    """The report for one chain: its rows in (seq, event_id) order and its signed checkpoints."""
    pending = sorted(checkpoints, key=lambda c: c['size'])
    checked = []
    tree, last_seq, last_hash = Tree(), 0, GENESIS
    start = 0
    if rows and rows[0]['seq'] > 1:
        # Whole blocks dropped by retention: links hold from a signed chain head at the gap.
        at = [c for c in pending if c['size'] == rows[0]['seq'] - 1 and c['head'] is not None]
        if not at:
            n = rows[0]['seq'] - 1
            return _broken(chain_id, 'missing', 1, '', 'records 1..%d are missing and no signed checkpoint at %d shows they expired (deleted records)' % (n, n))
        start = last_seq = at[0]['size']
        last_hash = at[0]['head']
        tree = None  # the tree before the gap is not in the rows: roots are not checked
        checked += [c['size'] for c in pending if c['size'] <= start]
        pending = [c for c in pending if c['size'] > start]

    for row in rows:
        seq, eid = row['seq'], row['event_id']
        if seq == last_seq:
            return _broken(chain_id, 'inserted', seq, eid, 'a second record claims sequence %d (inserted record)' % seq)
        if seq > last_seq + 1:
            gap = 'record %d is' % (last_seq + 1) if seq - 1 == last_seq + 1 else 'records %d..%d are' % (last_seq + 1, seq - 1)
            return _broken(chain_id, 'missing', last_seq + 1, '', '%s missing (deleted); the next stored record is %d' % (gap, seq))
        leaf = leaf_hash(row['payload'])
        if link_hash(row['prev_hash'], row, leaf) != row['hash']:
            return _broken(chain_id, 'altered', seq, eid, 'its hash does not match its content (altered field, payload or hash)')
        if row['prev_hash'] != last_hash:
            return _broken(chain_id, 'relinked', seq, eid, 'its previous-hash does not match the record before it (inserted, swapped or replaced record)')
        last_seq, last_hash = seq, row['hash']
        if tree is not None:
            tree.push(leaf)
        while pending and pending[0]['size'] == seq:
            cp = pending.pop(0)
            root_ok = tree is None or tree.root() == cp['root']
            if not root_ok or (cp['head'] is not None and cp['head'] != last_hash):
                since = checked[-1] if checked else start
                return _broken(chain_id, 'rewritten', seq, '', 'records %d..%d do not match the signed checkpoint of size %d (%s differs): rewritten along with their link hashes'
                               % (since + 1, seq, seq, 'Merkle root' if not root_ok else 'chain head'))
            checked.append(seq)
    if pending:
        beyond = pending[-1]['size']  # the largest: every record up to it is missing
        return _broken(chain_id, 'truncated', last_seq + 1, '', 'the store ends at record %d, but a signed checkpoint covers %d records: records %d..%d are missing (tail truncated)'
                       % (last_seq, beyond, last_seq + 1, beyond))
    seen = {}
    for row in rows:
        seen.setdefault(row['event_id'], []).append(row['seq'])
    twice = sorted((seqs for seqs in seen.values() if len(seqs) > 1), key=lambda s: s[1])
    if twice:
        seqs = twice[0]
        eid = next(e for e, s in seen.items() if s is seqs)
        return _broken(chain_id, 'duplicate', seqs[1], eid, 'event %s is recorded %s, at records %s: record %d repeats record %d (an event delivered again and stored again)'
                       % (eid, 'twice' if len(seqs) == 2 else '%d times' % len(seqs), ', '.join(map(str, seqs)), seqs[1], seqs[0]))
    return {'chain_id': chain_id, 'ok': True, 'from': start + 1, 'records': last_seq - start, 'head': {'seq': last_seq, 'hash': last_hash.hex()},
            'root': tree.root().hex() if tree is not None else None, 'checkpoints': checked, 'failure': None}


def _broken(chain_id, kind, seq, event_id, problem):
    return {'chain_id': chain_id, 'ok': False, 'failure': {'kind': kind, 'seq': seq, 'event_id': event_id, 'problem': problem}}


def load_checkpoints(files, dirs, key):
    """Signed checkpoints by chain (origin ends in /<chain>), sizes signed twice differently by chain, and the notes not used with why."""
    found, forks, ignored = {}, {}, []
    for d in dirs:
        for chain in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            sub = os.path.join(d, chain)
            if os.path.isdir(sub):
                files += [os.path.join(sub, n) for n in sorted(os.listdir(sub)) if n.endswith('.checkpoint')]
    for path in files:
        try:
            with open(path, encoding='utf-8') as f:
                cp = open_checkpoint(f.read(), key)
        except (Unusable, ValueError, OSError) as err:
            ignored.append('%s: %s' % (path, err))
            continue
        chain = cp['origin'].rsplit('/', 1)[-1]
        if '/' not in cp['origin']:
            ignored.append('%s: the origin %s names no chain' % (path, cp['origin']))
            continue
        same = [c for c in found.setdefault(chain, []) if c['size'] == cp['size']]
        if same and (same[0]['root'] != cp['root'] or same[0]['head'] != cp['head']):
            forks.setdefault(chain, cp['size'])
        elif not same:
            found[chain].append(cp)
    return found, forks, ignored


def main(argv):
    ap = argparse.ArgumentParser(description='Verify an exported Agate ledger without Agate.')
    ap.add_argument('rows', help='ledger rows as JSON lines (see docs/ledger.md)')
    ap.add_argument('--checkpoint', action='append', default=[], help='a signed checkpoint file')
    ap.add_argument('--checkpoint-dir', action='append', default=[], help='a checkpoint directory (DIR/<chain>/*.checkpoint)')
    ap.add_argument('--key', help='the verifier key (agate ledger-key), or a file holding it')
    ap.add_argument('--json', action='store_true', help='one JSON report per chain, one per line')
    args = ap.parse_args(argv)
    if (args.checkpoint or args.checkpoint_dir) and not args.key:
        _input_error('checkpoints need --key, the verifier key they are checked with')
    key = None
    if args.key:
        text = open(args.key, encoding='utf-8').read() if os.path.isfile(args.key) else args.key
        try:
            key = parse_verifier_key(text)
        except ValueError as err:
            _input_error('--key: %s' % err)
    chains = read_rows(args.rows)
    found, forks, ignored = load_checkpoints(list(args.checkpoint), args.checkpoint_dir, key) if key else ({}, {}, [])
    ok = True
    for chain_id in sorted(set(chains) | set(found)):
        report = verify_chain(chain_id, chains.get(chain_id, []), found.get(chain_id, []))
        if report['ok'] and chain_id in forks:
            report = _broken(chain_id, 'forked', 0, '', 'two signed checkpoints of size %d disagree: the signed log has forked' % forks[chain_id])
        ok = ok and report['ok']
        if args.json:
            print(json.dumps(report))
        elif report['ok']:
            against = '; matches signed checkpoint%s %s' % ('s' if len(report['checkpoints']) > 1 else '', ', '.join(map(str, report['checkpoints']))) if report['checkpoints'] else '; no signed checkpoint given'
            print('chain %s: OK, records %d..%d verified (%d)%s; head %s, root %s' % (chain_id, report['from'], report['head']['seq'], report['records'], against, report['head']['hash'], report['root']))
        else:
            f = report['failure']
            print('chain %s: BROKEN at record %d%s: %s [%s]' % (chain_id, f['seq'], ' (event %s)' % f['event_id'] if f['event_id'] else '', f['problem'], f['kind']))
    for why in ignored:
        print('warning: checkpoint not used: %s' % why, file=sys.stderr)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
