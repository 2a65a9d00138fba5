import { suite } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { helperScript } from './hook-script.js';

const test = suite('ssh/capture helper script: k kills a process tree');

/** A local process's state letter, or undefined once it is gone. */
function state(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** Resolves with the first line of `child`'s stdout that matches `re`. */
function lineOf(child: ChildProcess, re: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      const line = text.split('\n').find((l) => re.test(l));
      if (line !== undefined) {
        child.stdout!.off('data', onData);
        resolve(line);
      }
    };
    child.stdout!.on('data', onData);
    child.once('close', () => reject(new Error(`no line ${re} in ${JSON.stringify(text)}`)));
  });
}

test('every process the shell started, at any depth and whatever its name, is killed; a process outside the tree is not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agate-kill-'));
  // A command name that reads like the fields after it: the parent is found after the last ')'.
  const odd = join(dir, 'x) S 1 1 1');
  symlinkSync('/bin/sleep', odd);
  // Each process says its pid (labelled: they print concurrently), so that none is left behind should the test fail.
  const tree = spawn('sh', ['-c', `echo root=$$; sleep 60 & echo a=$!; sh -c '"$0" 61 & echo odd=$!; exec sleep 62' '${odd}' & echo b=$!; wait`], { stdio: ['ignore', 'pipe', 'ignore'] });
  const outside = spawn('sleep', ['63'], { stdio: 'ignore' });
  // Its own process group, as under sshd: at EOF the helper ends its group (`kill 0`).
  const helper = spawn('sh', ['-c', helperScript()], { stdio: ['pipe', 'pipe', 'ignore'], detached: true });
  const pids = new Map<string, number>();
  tree.stdout!.on('data', (c: Buffer) => {
    for (const m of c.toString().matchAll(/(\w+)=(\d+)/g)) pids.set(m[1]!, Number(m[2]));
  });
  try {
    for (let waited = 0; pids.size < 4 && waited < 5000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    const root = pids.get('root')!;
    const oddPid = pids.get('odd')!;
    assert.is(state(oddPid) !== undefined, true, 'the odd-named sleep runs');
    await lineOf(helper, /^D \//);
    // Listened for before the kill: the exit can be handled before the helper's answer is read.
    const exited = new Promise((r) => tree.once('exit', (_code, signal) => r(signal)));
    helper.stdin!.write(`k ${root}\n`);
    assert.is(await lineOf(helper, /^K /), `K ${root}`);
    assert.is(await exited, 'SIGKILL', 'the shell itself was killed');
    // Its descendants are orphans reaped by init: gone or zombies once the kill lands.
    for (let waited = 0; state(oddPid) !== undefined && state(oddPid) !== 'Z' && waited < 5000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    assert.ok(state(oddPid) === undefined || state(oddPid) === 'Z', `the odd-named grandchild is ${state(oddPid)}`);
    assert.is(state(outside.pid!), 'S', 'a process outside the tree was touched');
  } finally {
    for (const pid of pids.values()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    outside.kill('SIGKILL');
    helper.stdin!.end();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
