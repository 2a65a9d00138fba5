import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { checkClientEncoding, LexingSettings, parseStartupOptions, serializeOptions, setStatement, upstreamStartup } from './server-settings.js';

const options = suite('parseStartupOptions');
options('reads -c, -cname=value and --name=value as the server does, escapes included', () => {
  const r = parseStartupOptions("  -c standard_conforming_strings=off\t-cgeqo=off --search-path=a\\ b\\\\c -c x.y=1=2 ");
  assert.equal(r, { ok: true, settings: [
    { name: 'standard_conforming_strings', value: 'off' },
    { name: 'geqo', value: 'off' },
    { name: 'search_path', value: 'a b\\c' },
    { name: 'x.y', value: '1=2' },
  ] });
  assert.equal(parseStartupOptions(''), { ok: true, settings: [] });
});
options('other switches, a missing setting or value are refused', () => {
  for (const bad of ['-e', '-B 100', 'appdb', '-c', '-c name', '--=x', '-c =x']) assert.not.ok(parseStartupOptions(bad).ok, bad);
});
options('serializing and splitting again gives the same settings', () => {
  const settings = [{ name: 'search_path', value: 'a b\\c\td' }, { name: 'application_name', value: "it's" }];
  assert.equal(parseStartupOptions(serializeOptions(settings)), { ok: true, settings });
});
options.run();

const startup = suite('startup settings');
startup('a startup setting is decided as the SET it amounts to', () => {
  assert.is(setStatement({ name: 'standard_conforming_strings', value: 'off' }), `SET "standard_conforming_strings" TO 'off'`);
  assert.is(setStatement({ name: 'my.x"y', value: "it's" }), `SET "my"."x""y" TO 'it''s'`);
});
startup('client_encoding: UTF8 by default, SQL_ASCII kept, SJIS refused', () => {
  assert.equal(checkClientEncoding(undefined), { ok: true, clientEncoding: 'UTF8' });
  assert.equal(checkClientEncoding('SQL_ASCII'), { ok: true, clientEncoding: 'SQL_ASCII' });
  assert.not.ok(checkClientEncoding('SJIS').ok);
});
startup('upstream parameters pin the lexing settings and drop what was not decided', () => {
  const p = upstreamStartup({ application_name: 'psql', user: 'x', standard_conforming_strings: 'off', options: '-c a=b', replication: 'true' }, 'UTF8', [{ name: 'geqo', value: 'off' }]);
  assert.equal(p, { application_name: 'psql', options: '-c geqo=off', client_encoding: 'UTF8', standard_conforming_strings: 'on' });
});
startup.run();

const reports = suite('LexingSettings');
reports('ParameterStatus of a lexing setting Agate cannot follow is a violation; others are ignored', () => {
  const s = new LexingSettings();
  assert.equal(s.missing(), ['standard_conforming_strings', 'client_encoding']);
  assert.is(s.observe('standard_conforming_strings', 'on'), undefined);
  assert.is(s.observe('client_encoding', 'UTF8'), undefined);
  assert.is(s.observe('TimeZone', 'UTC'), undefined);
  assert.equal(s.missing(), []);
  assert.match(s.observe('standard_conforming_strings', 'off')!, /standard_conforming_strings = 'off'/);
  assert.match(s.observe('client_encoding', 'SJIS')!, /SJIS/);
});
reports.run();
