/**
 * Analyst SQL that tries to read outside the analyst views, one entry per ClickHouse family that
 * reaches files, URLs, object stores, remote servers, processes, stdin, dictionaries or the
 * engine's own tables, plus the clause tricks (INFILE/OUTFILE, FORMAT, SETTINGS in a subquery).
 * `names` is what the refusal must name. Used through the library, the HTTP API and the CLI.
 */
interface EscapeAttempt {
  family: string;
  sql: string;
  names: string;
}

export function sqlEscapeCorpus(secretFile: string): EscapeAttempt[] {
  const f = `'${secretFile}'`;
  return [
    { family: 'scalar file()', sql: `SELECT file(${f})`, names: 'function file' },
    { family: 'scalar file() inside an expression', sql: `SELECT extract(file('/proc/self/environ'), 'PASSWORD=([^\\\\x00]*)')`, names: 'function file' },
    { family: 'scalar file() in a subquery', sql: `SELECT * FROM agate.commands WHERE text IN (SELECT file(${f}))`, names: 'function file' },
    { family: 'scalar file() upper case', sql: `SELECT FILE(${f})`, names: 'function FILE' },
    { family: 'scalar file() in a lambda', sql: `SELECT arrayMap(x -> file(x), [${f}])`, names: 'function file' },
    { family: 'file() table function', sql: `SELECT * FROM file(${f}, 'LineAsString')`, names: 'table function file' },
    { family: 'url', sql: "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')", names: 'table function url' },
    { family: 's3', sql: "SELECT * FROM s3('http://127.0.0.1:9/b/k', 'LineAsString')", names: 'table function s3' },
    { family: 'hdfs', sql: "SELECT * FROM hdfs('hdfs://127.0.0.1:9/k', 'LineAsString')", names: 'table function hdfs' },
    { family: 'azure', sql: "SELECT * FROM azureBlobStorage('http://127.0.0.1:9/', 'c', 'k', 'LineAsString')", names: 'table function azureBlobStorage' },
    { family: 'mysql', sql: "SELECT * FROM mysql('127.0.0.1:9', 'd', 't', 'u', 'p')", names: 'table function mysql' },
    { family: 'postgresql', sql: "SELECT * FROM postgresql('127.0.0.1:9', 'd', 't', 'u', 'p')", names: 'table function postgresql' },
    { family: 'remote', sql: "SELECT * FROM remote('127.0.0.1:9', system.one)", names: 'table function remote' },
    { family: 'cluster', sql: "SELECT * FROM cluster('default', system.one)", names: 'table function cluster' },
    { family: 'executable', sql: "SELECT * FROM executable('cat /etc/hostname', 'LineAsString', 'x String')", names: 'table function executable' },
    { family: 'input', sql: "SELECT * FROM input('x String')", names: 'table function input' },
    { family: 'dictionary table function', sql: "SELECT * FROM dictionary('d')", names: 'table function dictionary' },
    { family: 'dictGet', sql: "SELECT dictGet('d', 'v', toUInt64(1))", names: 'function dictGet' },
    { family: 'dictGetString', sql: "SELECT dictGetString('d', 'v', toUInt64(1))", names: 'function dictGetString' },
    { family: 'joinGet', sql: "SELECT joinGet('agate.ledger', 'body', 'x')", names: 'function joinGet' },
    { family: 'filesystem', sql: "SELECT * FROM filesystem('/')", names: 'table function filesystem' },
    { family: 'view() table function', sql: 'SELECT * FROM view(SELECT * FROM system.tables)', names: 'table function view' },
    { family: 'system tables', sql: 'SELECT * FROM system.tables', names: 'table system.tables' },
    { family: 'system tables in a join', sql: 'SELECT * FROM agate.commands AS c JOIN system.settings AS s ON 1', names: 'table system.settings' },
    { family: 'system tables through IN', sql: "SELECT 1 WHERE 'x' IN system.tables", names: 'table system.tables' },
    { family: 'information_schema', sql: 'SELECT * FROM information_schema.tables', names: 'table information_schema.tables' },
    { family: 'ledger internals', sql: 'SELECT * FROM agate.ledger', names: 'table agate.ledger' },
    { family: 'unqualified table', sql: 'SELECT * FROM commands', names: 'table commands' },
    { family: 'server settings', sql: "SELECT getServerSetting('user_files_path')", names: 'function getServerSetting' },
    { family: 'settings', sql: "SELECT getSetting('readonly')", names: 'function getSetting' },
    { family: 'introspection', sql: 'SELECT addressToSymbol(toUInt64(1))', names: 'function addressToSymbol' },
    { family: 'host', sql: 'SELECT hostName()', names: 'function hostName' },
    { family: 'INTO OUTFILE', sql: "SELECT 1 INTO OUTFILE '/tmp/agate-should-not-exist'", names: 'INTO OUTFILE' },
    { family: 'FORMAT clause', sql: 'SELECT 1 FORMAT TabSeparated', names: 'FORMAT' },
    { family: 'SETTINGS clause', sql: 'SELECT 1 SETTINGS readonly = 0', names: 'SETTINGS' },
    { family: 'SETTINGS in a subquery', sql: `SELECT * FROM (SELECT * FROM file(${f}, 'LineAsString') SETTINGS readonly = 0)`, names: 'table function file' },
    { family: 'SETTINGS in a scalar subquery', sql: 'SELECT (SELECT 1 SETTINGS readonly = 0)', names: 'SETTINGS' },
    { family: 'APPLY hides a function', sql: 'SELECT * APPLY(toString) FROM agate.commands', names: 'APPLY' },
    { family: 'INSERT … FROM INFILE', sql: "INSERT INTO agate.ledger FROM INFILE '/etc/hostname' FORMAT LineAsString", names: 'statement' },
  ];
}
