/**
 * The target terminal's line discipline, as `stty -g` prints it, reduced to what the line
 * tracker needs: which keys the kernel takes as a line end and which it takes as editing or a
 * signal. The agent can change them from inside the shell (`stty eof ^A`, `stty kill '#'`); a
 * program that reads the terminal line by line (a nested `sh`) then gets lines other than the
 * ones rebuilt with the defaults.
 */
export interface PtyModes {
  /** ICANON: the kernel assembles lines and applies the editing keys. */
  canonical: boolean;
  /** Per key, what the kernel does with it (keys not listed reach the program as they are). */
  roles: ReadonlyMap<number, KeyRole>;
}

export type KeyRole = 'line-end' | 'erase' | 'kill' | 'word-erase' | 'literal-next' | 'reprint' | 'signal';

/** c_cc indexes (Linux) and the flag bits that switch their keys on. */
const VINTR = 0, VQUIT = 1, VERASE = 2, VKILL = 3, VEOF = 4, VSUSP = 10, VEOL = 11, VREPRINT = 12, VWERASE = 14, VLNEXT = 15, VEOL2 = 16;
const ISIG = 0x1, ICANON = 0x2, IEXTEN = 0x8000;
/** _POSIX_VDISABLE on Linux: the key is switched off. */
const DISABLED = 0;

/** A `stty -g` line: iflag:oflag:cflag:lflag then the c_cc bytes, all in hex. */
const STTY_G = /^[0-9a-f]{1,8}(:[0-9a-f]{1,8}){3}(:[0-9a-f]{1,2}){17,64}$/;

/** The modes in a `stty -g` line; undefined when it is not one. */
export function parseSttyG(line: string): PtyModes | undefined {
  const text = line.trim().toLowerCase();
  if (!STTY_G.test(text)) return undefined;
  const fields = text.split(':').map((f) => parseInt(f, 16));
  const lflag = fields[3]!;
  const cc = fields.slice(4);
  const canonical = (lflag & ICANON) !== 0;
  const roles = new Map<number, KeyRole>();
  const give = (index: number, role: KeyRole, on: boolean) => {
    const key = cc[index]!;
    if (on && key !== DISABLED && !roles.has(key)) roles.set(key, role);
  };
  // n_tty checks the signal keys before the editing keys, and a key holds its first role.
  for (const i of [VINTR, VQUIT, VSUSP]) give(i, 'signal', (lflag & ISIG) !== 0);
  const extended = (lflag & IEXTEN) !== 0;
  give(VLNEXT, 'literal-next', canonical && extended);
  give(VERASE, 'erase', canonical);
  give(VKILL, 'kill', canonical);
  give(VWERASE, 'word-erase', canonical && extended);
  give(VREPRINT, 'reprint', canonical && extended);
  give(VEOF, 'line-end', canonical);
  give(VEOL, 'line-end', canonical);
  give(VEOL2, 'line-end', canonical && extended);
  return { canonical, roles };
}

/**
 * The keys the tracker handles itself and what it takes them for (line-tracker.ts): those the
 * terminal's default modes give these roles, and ^H, which readline erases with.
 */
const TRACKER_ROLES: ReadonlyMap<number, KeyRole> = new Map([
  [0x03, 'signal'], [0x1c, 'signal'], [0x1a, 'signal'],
  [0x7f, 'erase'], [0x08, 'erase'], [0x15, 'kill'], [0x17, 'word-erase'], [0x16, 'literal-next'], [0x12, 'reprint'],
  [0x04, 'line-end'],
]);

/**
 * The keys the kernel takes otherwise than the tracker does under `modes` ('none': the kernel
 * passes the key on as it is): a line holding one is not the line the program reads, so it is
 * marked edited, and one that ends a line there ends it in the tracker too. The tracker's own
 * line ends (readline's, line-tracker.ts) stay: outside canonical mode the program does its own
 * editing, which may be readline's.
 */
export function foreignKeys(modes: PtyModes): Map<number, KeyRole | 'none'> {
  const foreign = new Map<number, KeyRole | 'none'>();
  for (const [key, role] of modes.roles) if (TRACKER_ROLES.get(key) !== role) foreign.set(key, role);
  for (const [key] of TRACKER_ROLES) if (!modes.roles.has(key)) foreign.set(key, 'none');
  return foreign;
}
