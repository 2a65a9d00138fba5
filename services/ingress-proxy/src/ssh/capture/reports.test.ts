import { suite } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { MAX_REPORT_BYTES, ReportScanner, type HookReport } from './reports.js';

const test = suite('ssh/capture ReportScanner');

const report = (challenge: string, pid: number, payload: string) => `trap -- '#AGATE1:${challenge}:${pid}:${payload}' RTMAX\r\n`;

function scan(chunks: string[]): { output: string; reports: HookReport[] } {
  const s = new ReportScanner();
  let output = '';
  const reports: HookReport[] = [];
  for (const c of chunks) {
    const r = s.push(Buffer.from(c, 'latin1'));
    output += r.output.toString('latin1');
    reports.push(...r.reports);
  }
  return { output: output + s.flush().toString('latin1'), reports };
}

test('reports are taken out of the output, at every split point', () => {
  const whole = `before\r\n${report('ready', 41, '')}user@box:~$ ${report('123456', 41, 'rm -rf /tmp/x')}after`;
  for (let i = 0; i <= whole.length; i += 1) {
    for (const j of [i, Math.min(whole.length, i + 7)]) {
      const { output, reports } = scan([whole.slice(0, i), whole.slice(i, j), whole.slice(j)]);
      assert.is(output, 'before\r\nuser@box:~$ after', `split at ${i}/${j}`);
      assert.equal(reports, [{ kind: 'ready', pid: 41 }, { kind: 'command', challenge: '123456', pid: 41, text: 'rm -rf /tmp/x' }]);
    }
  }
});

test("the hook's escapes are undone; UTF-8 survives; a bare \\n line end (raw terminal) is accepted", () => {
  const utf8 = Buffer.from(report('9', 7, 'echo a\\\\b \\qq\\q\\ncat <<X\\nhé\\nX\\t').replace('\r\n', '\n'), 'utf8').toString('latin1');
  const { reports } = scan([utf8]);
  assert.equal(reports, [{ kind: 'command', challenge: '9', pid: 7, text: "echo a\\b 'q'\ncat <<X\nhé\nX\t" }]);
});

test('look-alikes stay output: other traps, a non-numeric challenge', () => {
  for (const text of ["trap -- 'echo hi' EXIT\r\n", "trap -- '#AGATE1:abc:1:x' RTMAX\r\n", "trap -- '#AGATE1:1:1:x' INT\r\n"]) {
    const { output, reports } = scan([text]);
    assert.equal(reports, [], text);
    assert.is(output, text, text);
  }
});

test('a report too long to read, or malformed, is unreadable and never reaches the output (it carries the challenge)', () => {
  const long = 'x'.repeat(MAX_REPORT_BYTES + 10);
  const whole = `a${report('4242', 9, `echo ${long}`)}b`;
  for (const size of [whole.length, 65536, 4096]) {
    const chunks: string[] = [];
    for (let i = 0; i < whole.length; i += size) chunks.push(whole.slice(i, i + size));
    const { output, reports } = scan(chunks);
    assert.is(output, 'ab', `chunks of ${size}`);
    assert.equal(reports, [{ kind: 'unreadable', challenge: '4242', pid: 9, reason: 'the command is longer than 256 KiB' }]);
  }
  const bad = scan([`${report('77', 3, 'bad\\z')}ok`]);
  assert.is(bad.output, 'ok');
  assert.equal(bad.reports, [{ kind: 'unreadable', challenge: '77', pid: 3, reason: 'the report is malformed' }]);
});

test('an unfinished report at the end of the stream is output', () => {
  assert.is(scan(["x trap -- '#AGATE1:12:3:ech"]).output, "x trap -- '#AGATE1:12:3:ech");
});

test.run();
