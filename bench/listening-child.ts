import { spawn, type ChildProcess } from 'node:child_process';

/**
 * Starts a benchmark's helper process (a Node script that prints `listening <port>` once it
 * serves) and resolves with it and its port; rejects if it exits first.
 */
export async function startListeningChild(what: string, script: string, args: readonly string[], nodeArgs: readonly string[] = []): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m !== null) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before listening`)));
  });
  return { child, port };
}
