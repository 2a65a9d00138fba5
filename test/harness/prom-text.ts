/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4), for tests: what
 * `promtool check metrics` refuses, it refuses too — a sample before its family's TYPE, a
 * malformed name, label or value, a duplicate series, a HELP or TYPE given twice, a histogram
 * whose buckets shrink, lack `+Inf`, or disagree with `_count`. Returns the samples it read.
 */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, string>;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count', ''], counter: ['', '_total'], gauge: [''], untyped: [''] };

export function parseExposition(text: string): Exposition {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const seen = new Set<string>();
  const samples: Sample[] = [];
  const lines = text.slice(0, -1).split('\n');
  for (const [i, line] of lines.entries()) {
    const at = `line ${i + 1}`;
    if (line.trim() === '') continue; // the format allows empty lines
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (m === null) continue; // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`${at}: bad metric name ${name}`);
      if (kind === 'HELP') {
        if (helps.has(name)) throw new Error(`${at}: second HELP for ${name}`);
        helps.add(name);
      } else {
        if (types.has(name)) throw new Error(`${at}: second TYPE for ${name}`);
        if (!TYPES.has(rest)) throw new Error(`${at}: unknown type ${rest}`);
        if (samples.some((s) => familyOf(s.name, types) === name)) throw new Error(`${at}: TYPE for ${name} after its samples`);
        types.set(name, rest);
      }
      continue;
    }
    const sample = parseSample(line, at);
    const family = familyOf(sample.name, types);
    if (family === undefined) throw new Error(`${at}: sample ${sample.name} has no TYPE line before it`);
    const key = `${sample.name}{${Object.entries(sample.labels).sort().map(([k, v]) => `${k}=${v}`).join(',')}}`;
    if (seen.has(key)) throw new Error(`${at}: duplicate series ${key}`);
    seen.add(key);
    samples.push(sample);
  }
  for (const [name, type] of types) if (type === 'histogram') checkHistogram(name, samples);
  return { types, samples };
}

function familyOf(sample: string, types: Map<string, string>): string | undefined {
  for (const [family, type] of types) for (const suffix of SUFFIXES[type]!) if (sample === family + suffix) return family;
  return undefined;
}

function parseSample(line: string, at: string): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line);
  if (m === null) throw new Error(`${at}: not a sample line: ${line}`);
  const labels: Record<string, string> = {};
  let rest = m[3] ?? '';
  while (rest !== '') {
    const l = /^([^=]+)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(rest);
    if (l === null) throw new Error(`${at}: bad labels: {${m[3]}}`);
    const [whole, name, value] = l as unknown as [string, string, string];
    if (!LABEL.test(name) || name.startsWith('__')) throw new Error(`${at}: bad label name ${name}`);
    if (name in labels) throw new Error(`${at}: label ${name} twice`);
    labels[name] = value.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    rest = rest.slice(whole.length);
  }
  return { name: m[1]!, labels, value: parseValue(m[4]!, at) };
}

/** A sample value as Prometheus reads it (Go's ParseFloat): decimals, and NaN / Inf in any case. */
function parseValue(raw: string, at: string): number {
  if (/^nan$/i.test(raw)) return NaN;
  const inf = /^([+-]?)inf(inity)?$/i.exec(raw);
  if (inf !== null) return inf[1] === '-' ? -Infinity : Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw)) throw new Error(`${at}: bad value ${raw}`);
  return Number(raw);
}

function checkHistogram(name: string, samples: Sample[]): void {
  const series = new Map<string, Sample[]>();
  const idOf = (labels: Record<string, string>) => JSON.stringify(Object.entries(labels).filter(([k]) => k !== 'le').sort());
  for (const s of samples.filter((s) => s.name === `${name}_bucket`)) {
    if (s.labels.le === undefined) throw new Error(`${name}_bucket without le`);
    const id = idOf(s.labels);
    series.set(id, [...(series.get(id) ?? []), s]);
  }
  for (const [id, buckets] of series) {
    const les = buckets.map((b) => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)));
    if (les.at(-1) !== Infinity) throw new Error(`${name}${id}: no +Inf bucket`);
    for (let i = 1; i < buckets.length; i++) {
      if (!(les[i]! > les[i - 1]!)) throw new Error(`${name}${id}: bucket bounds not increasing`);
      if (buckets[i]!.value < buckets[i - 1]!.value) throw new Error(`${name}${id}: bucket counts decrease`);
    }
    const count = samples.find((s) => s.name === `${name}_count` && idOf(s.labels) === id);
    if (count === undefined || count.value !== buckets.at(-1)!.value) throw new Error(`${name}${id}: _count does not equal the +Inf bucket`);
    if (!samples.some((s) => s.name === `${name}_sum` && idOf(s.labels) === id)) throw new Error(`${name}${id}: no _sum`);
  }
}

/** The value of one series, or undefined when absent. */
export function sampleValue(e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  return e.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}
