/**
 * Counters kept in memory and rendered in the Prometheus text format (`GET /metrics`).
 * Web-standard only. At the edge they are per isolate: a scrape sees one isolate's
 * counts (Cloudflare's own analytics aggregate across isolates; docs/decisions.md).
 *
 * @example
 * metrics.increment("fulcrum_edge_decisions_total", { decision: "DENY", reason: "RATE_LIMITED" });
 * return new Response(metrics.render(), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } });
 */

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type Labels = Readonly<Record<string, string>>;

interface Family {
  help: string;
  type: "counter" | "gauge";
  /** Label set (rendered) → value. */
  series: Map<string, number>;
}

/** One label set of a histogram: cumulative-on-render bucket counts, sum and count. */
interface HistogramSeries {
  labels: Labels;
  /** counts[i]: observations ≤ buckets[i] and > buckets[i-1] (made cumulative on render). */
  counts: number[];
  sum: number;
  count: number;
}

interface HistogramFamily {
  help: string;
  /** Upper bounds, ascending; +Inf is implicit. */
  buckets: readonly number[];
  series: Map<string, HistogramSeries>;
}

const escapeLabel = (v: string) =>
  v.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');

function renderLabels(labels: Labels): string {
  const names = Object.keys(labels).sort();
  if (names.length === 0) return "";
  return `{${names.map((n) => `${n}="${escapeLabel(labels[n] ?? "")}"`).join(",")}}`;
}

export class Metrics {
  private readonly families = new Map<string, Family>();
  private readonly histograms = new Map<string, HistogramFamily>();

  /** Declares a metric so it renders (with HELP) before anything counted it. */
  describe(name: string, help: string, type: Family["type"] = "counter"): this {
    if (!this.families.has(name)) this.families.set(name, { help, type, series: new Map() });
    return this;
  }

  increment(name: string, labels: Labels = {}, by = 1): void {
    const family = this.family(name);
    const key = renderLabels(labels);
    family.series.set(key, (family.series.get(key) ?? 0) + by);
  }

  set(name: string, value: number, labels: Labels = {}): void {
    this.family(name, "gauge").series.set(renderLabels(labels), value);
  }

  /** The current value of one series (0 when never counted): for tests. */
  value(name: string, labels: Labels = {}): number {
    return this.families.get(name)?.series.get(renderLabels(labels)) ?? 0;
  }

  /**
   * Declares a histogram with its bucket upper bounds (ascending; `+Inf` is added).
   *
   * @example metrics.describeHistogram("x_seconds", "Latency.", [0.01, 0.1, 1]);
   */
  describeHistogram(name: string, help: string, buckets: readonly number[]): this {
    if (buckets.length === 0 || buckets.some((b, i) => i > 0 && b <= (buckets[i - 1] ?? b))) {
      throw new RangeError(`histogram ${name}: buckets must be non-empty and ascending`);
    }
    if (!this.histograms.has(name)) {
      this.histograms.set(name, { help, buckets: [...buckets], series: new Map() });
    }
    return this;
  }

  /** Records one observation in a histogram declared with {@link describeHistogram}. */
  observe(name: string, value: number, labels: Labels = {}): void {
    const family = this.histograms.get(name);
    if (!family) throw new Error(`histogram ${name} was not declared`);
    const key = renderLabels(labels);
    let series = family.series.get(key);
    if (!series) {
      series = { labels, counts: new Array(family.buckets.length + 1).fill(0), sum: 0, count: 0 };
      family.series.set(key, series);
    }
    let i = family.buckets.findIndex((bound) => value <= bound);
    if (i < 0) i = family.buckets.length;
    series.counts[i] = (series.counts[i] ?? 0) + 1;
    series.sum += value;
    series.count += 1;
  }

  /** Count and sum of one histogram series (zeros when never observed): for tests. */
  histogram(name: string, labels: Labels = {}): { count: number; sum: number } {
    const series = this.histograms.get(name)?.series.get(renderLabels(labels));
    return { count: series?.count ?? 0, sum: series?.sum ?? 0 };
  }

  render(): string {
    const blocks: [string, string[]][] = [];
    for (const [name, family] of this.families) {
      const lines = [`# HELP ${name} ${family.help}`, `# TYPE ${name} ${family.type}`];
      for (const [labels, value] of family.series) lines.push(`${name}${labels} ${value}`);
      blocks.push([name, lines]);
    }
    for (const [name, family] of this.histograms) {
      const lines = [`# HELP ${name} ${family.help}`, `# TYPE ${name} histogram`];
      for (const series of family.series.values()) {
        let cumulative = 0;
        family.buckets.forEach((bound, i) => {
          cumulative += series.counts[i] ?? 0;
          const labels = renderLabels({ ...series.labels, le: String(bound) });
          lines.push(`${name}_bucket${labels} ${cumulative}`);
        });
        const inf = renderLabels({ ...series.labels, le: "+Inf" });
        lines.push(`${name}_bucket${inf} ${series.count}`);
        const own = renderLabels(series.labels);
        lines.push(`${name}_sum${own} ${series.sum}`, `${name}_count${own} ${series.count}`);
      }
      blocks.push([name, lines]);
    }
    blocks.sort(([a], [b]) => (a < b ? -1 : 1));
    return `${blocks.flatMap(([, lines]) => lines).join("\n")}\n`;
  }

  private family(name: string, type: Family["type"] = "counter"): Family {
    let family = this.families.get(name);
    if (!family) {
      family = { help: name, type, series: new Map() };
      this.families.set(name, family);
    }
    return family;
  }
}
