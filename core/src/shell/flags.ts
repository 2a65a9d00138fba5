/*
 * Flags in one canonical spelling, so a rule written `flags: ["-r", "-f"]` matches `rm -rf`,
 * `rm -r -f`, `rm -fr`, `rm -R --force` and `rm --rec --forc` (GNU getopt accepts any unambiguous
 * prefix of a long option). Programs without an entry still get short clusters split and
 * `--name=value` reduced to `--name`.
 */
interface FlagTable {
  /** Long option → canonical spelling; also the list prefixes are resolved against. */
  long: Record<string, string>;
  /** Short letters that are spelled differently but mean the same. */
  short?: Record<string, string>;
  /** Options are single-dash words (`find -delete`, `-name`): never split into letters. */
  words?: true;
}

const TABLES: Record<string, FlagTable> = {
  rm: {
    long: { '--recursive': '-r', '--force': '-f', '--dir': '-d', '--interactive': '-i', '--verbose': '-v', '--one-file-system': '--one-file-system', '--no-preserve-root': '--no-preserve-root', '--preserve-root': '--preserve-root' },
    short: { '-R': '-r' },
  },
  cp: { long: { '--recursive': '-r', '--force': '-f' }, short: { '-R': '-r' } },
  chmod: { long: { '--recursive': '-R', '--verbose': '-v' } },
  chown: { long: { '--recursive': '-R', '--verbose': '-v' } },
  // A push --force-with-lease still rewrites the remote's history: it is a force push.
  git: { long: { '--force': '-f', '--force-with-lease': '-f', '--force-if-includes': '--force-if-includes', '--mirror': '--mirror', '--delete': '-d', '--all': '--all', '--tags': '--tags' } },
  kill: { long: { '--signal': '-s' } },
  shred: { long: { '--remove': '-u', '--zero': '-z', '--force': '-f' } },
  truncate: { long: { '--size': '-s' } },
  find: { long: {}, words: true },
};

interface ParsedArgs {
  /** Canonical flags, each once. */
  flags: string[];
  /** The other arguments: operands, in order. */
  operands: string[];
}

/** Splits a program's arguments (argv without argv[0]) into canonical flags and operands. */
export function parseArgs(program: string, args: readonly string[]): ParsedArgs {
  const table = TABLES[program];
  const flags = new Set<string>();
  const operands: string[] = [];
  let ended = false;
  for (const arg of args) {
    if (ended || arg === '-' || !arg.startsWith('-')) {
      operands.push(arg);
      continue;
    }
    if (arg === '--') {
      ended = true;
      continue;
    }
    if (arg.startsWith('--')) {
      flags.add(canonicalLong(table, arg.split('=', 1)[0]!));
      continue;
    }
    if (table?.words === true) {
      flags.add(arg);
      continue;
    }
    // A short cluster: each letter is a flag (`-rf`); the whole word is kept too, for programs
    // whose single-dash options are words without a table entry (`kill -9`).
    if (arg.length > 2) flags.add(arg);
    for (const letter of arg.slice(1)) {
      const f = `-${letter}`;
      flags.add(table?.short?.[f] ?? f);
    }
  }
  // `git push origin +main` force-pushes just as `--force` does.
  if (program === 'git' && operands[0] === 'push' && operands.slice(1).some((o) => o.startsWith('+'))) flags.add('-f');
  return { flags: [...flags], operands };
}

function canonicalLong(table: FlagTable | undefined, name: string): string {
  if (table === undefined) return name;
  const exact = table.long[name];
  if (exact !== undefined) return exact;
  // An ambiguous prefix still has one meaning when every candidate has the same canonical form.
  const meanings = new Set(Object.keys(table.long).filter((l) => l.startsWith(name)).map((l) => table.long[l]!));
  return meanings.size === 1 ? [...meanings][0]! : name;
}
