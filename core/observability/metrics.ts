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

const escapeLabel = (v: string) =>
  v.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');

function renderLabels(labels: Labels): string {
  const names = Object.keys(labels).sort();
  if (names.length === 0) return "";
  return `{${names.map((n) => `${n}="${escapeLabel(labels[n] ?? "")}"`).join(",")}}`;
}

export class Metrics {
  private readonly families = new Map<string, Family>();

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

  render(): string {
    const lines: string[] = [];
    for (const [name, family] of [...this.families].sort(([a], [b]) => (a < b ? -1 : 1))) {
      lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} ${family.type}`);
      for (const [labels, value] of family.series) lines.push(`${name}${labels} ${value}`);
    }
    return `${lines.join("\n")}\n`;
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
