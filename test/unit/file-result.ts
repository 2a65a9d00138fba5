/*
 * What one test file's run counts for, read off uvu's summary ("Total:", "Passed:" per suite
 * queue) and the process's exit status. test/run.sh and test/node-lts.sh apply the same rule in
 * bash.
 */

interface FileCounts { passed: number; total: number }

/** The file's passed and total tests, summed over every summary in its output (colours stripped). */
export function countsOf(output: string): FileCounts {
  const sum = (label: string) => [...output.matchAll(new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'gm'))].reduce((s, m) => s + Number(m[1]), 0);
  return { passed: sum('Passed'), total: sum('Total') };
}

/**
 * How many failures the file counts: its failed tests, or one when it failed without counting
 * any: it exited non-zero, or it ran no test at all (a suite whose `.run()` was left out prints
 * nothing and exits 0).
 */
export function failuresOf({ passed, total }: FileCounts, exitCode: number | null): number {
  if (total > passed) return total - passed;
  return exitCode !== 0 || total === 0 ? 1 : 0;
}
