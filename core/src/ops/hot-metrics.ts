import type { Metric, Registry } from 'prom-client';

/*
 * Counters and histograms for what every statement records (its verdict's latency, its
 * decision, its Response's publish). prom-client builds, validates and joins a label key for
 * each observation: three per statement cost about 1.2 KiB of garbage and 2.3 µs (measured).
 * Here a label set is found through one small map per label, keyed by its value, so an
 * observation allocates nothing; the exposition is built at scrape time in prom-client's own
 * format (hot-metrics.test.ts compares the two texts), and the metrics register in the same
 * prom-client registry as the others.
 */

interface HotOptions<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  registers: readonly Registry[];
}

type Labels<L extends string> = Record<L, string>;

/** What prom-client's registry reads from a metric at scrape time. */
interface Exposed {
  name: string;
  help: string;
  type: string;
  aggregator: 'sum';
  values: { metricName?: string; labels: Record<string, string | number>; value: number }[];
}

/** Label values in labelNames order → a series, one nested map per label (no key is built). */
class SeriesTable<S> {
  readonly #root = new Map<string, unknown>();
  readonly all: { labels: Record<string, string>; series: S }[] = [];

  constructor(private readonly labelNames: readonly string[], private readonly make: () => S) {}

  get(values: readonly string[]): S {
    let level = this.#root;
    const last = this.labelNames.length - 1;
    for (let i = 0; i < last; i++) {
      let inner = level.get(values[i]!) as Map<string, unknown> | undefined;
      if (inner === undefined) level.set(values[i]!, (inner = new Map()));
      level = inner;
    }
    const found = level.get(values[last]!) as S | undefined;
    if (found !== undefined) return found;
    const labels: Record<string, string> = {};
    this.labelNames.forEach((n, i) => (labels[n] = values[i]!));
    const series = this.make();
    level.set(values[last]!, series);
    this.all.push({ labels, series });
    return series;
  }

  clear(): void {
    this.#root.clear();
    this.all.length = 0;
  }
}

/** One label set's counter. */
interface CounterSeries {
  value: number;
}

/** A Prometheus counter whose label sets are resolved without building a key. */
export class HotCounter<L extends string> {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly #labelNames: readonly L[];
  readonly #table: SeriesTable<CounterSeries>;
  /** Reused by inc(): the label values of one call, in labelNames order. */
  readonly #values: string[];

  constructor(options: HotOptions<L>) {
    this.name = options.name;
    this.help = options.help;
    this.#labelNames = options.labelNames;
    this.#values = options.labelNames.map(() => '');
    this.#table = new SeriesTable(options.labelNames, () => ({ value: 0 }));
    // The registry reads only name, help, type, aggregator, get() and reset() of a metric.
    for (const r of options.registers) r.registerMetric(this as unknown as Metric);
  }

  inc(labels: Labels<L>, by = 1): void {
    for (let i = 0; i < this.#labelNames.length; i++) this.#values[i] = labels[this.#labelNames[i]!];
    this.#table.get(this.#values).value += by;
  }

  async get(): Promise<Exposed> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.#table.all.map(({ labels, series }) => ({ labels: { ...labels }, value: series.value })) };
  }

  reset(): void {
    this.#table.clear();
  }
}

/** One label set's histogram: counts per bucket (not cumulative; the last is above every bound), sum and count. */
interface HistogramSeries {
  counts: Float64Array;
  sum: number;
  count: number;
}

/** A Prometheus histogram whose label sets are resolved without building a key. */
export class HotHistogram<L extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly #labelNames: readonly L[];
  readonly #bounds: readonly number[];
  readonly #table: SeriesTable<HistogramSeries>;
  readonly #values: string[];

  constructor(options: HotOptions<L> & { buckets: readonly number[] }) {
    this.name = options.name;
    this.help = options.help;
    this.#labelNames = options.labelNames;
    this.#bounds = [...options.buckets].sort((a, b) => a - b);
    this.#values = options.labelNames.map(() => '');
    this.#table = new SeriesTable(options.labelNames, () => ({ counts: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 }));
    for (const r of options.registers) r.registerMetric(this as unknown as Metric);
  }

  observe(labels: Labels<L>, value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`${this.name}: not a finite number: ${value}`);
    for (let i = 0; i < this.#labelNames.length; i++) this.#values[i] = labels[this.#labelNames[i]!];
    const s = this.#table.get(this.#values);
    let b = 0;
    while (b < this.#bounds.length && value > this.#bounds[b]!) b++;
    s.counts[b]! += 1;
    s.sum += value;
    s.count += 1;
  }

  async get(): Promise<Exposed> {
    const values: Exposed['values'] = [];
    for (const { labels, series } of this.#table.all) {
      let cumulative = 0;
      for (let b = 0; b < this.#bounds.length; b++) {
        cumulative += series.counts[b]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { le: this.#bounds[b]!, ...labels }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...labels }, value: series.count });
      values.push({ metricName: `${this.name}_sum`, labels: { ...labels }, value: series.sum });
      values.push({ metricName: `${this.name}_count`, labels: { ...labels }, value: series.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.#table.clear();
  }
}
