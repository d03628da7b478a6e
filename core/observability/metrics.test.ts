import { describe, expect, it } from "vitest";
import { Metrics } from "./metrics.js";

describe("Metrics", () => {
  it("renders counters and gauges sorted by name, with HELP and TYPE", () => {
    const metrics = new Metrics().describe("b_total", "Bs.").describe("a", "As.", "gauge");
    metrics.increment("b_total", { kind: 'x"y' }, 2);
    metrics.set("a", 7);
    expect(metrics.render()).toBe(
      [
        "# HELP a As.",
        "# TYPE a gauge",
        "a 7",
        "# HELP b_total Bs.",
        "# TYPE b_total counter",
        'b_total{kind="x\\"y"} 2',
        "",
      ].join("\n"),
    );
    expect(metrics.value("b_total", { kind: 'x"y' })).toBe(2);
  });

  it("renders a histogram with cumulative buckets, +Inf, sum and count", () => {
    const metrics = new Metrics().describeHistogram("lat_seconds", "Latency.", [0.1, 1]);
    for (const v of [0.05, 0.1, 0.5, 3]) metrics.observe("lat_seconds", v, { table: "events" });
    expect(metrics.render()).toBe(
      [
        "# HELP lat_seconds Latency.",
        "# TYPE lat_seconds histogram",
        'lat_seconds_bucket{le="0.1",table="events"} 2',
        'lat_seconds_bucket{le="1",table="events"} 3',
        'lat_seconds_bucket{le="+Inf",table="events"} 4',
        'lat_seconds_sum{table="events"} 3.65',
        'lat_seconds_count{table="events"} 4',
        "",
      ].join("\n"),
    );
    expect(metrics.histogram("lat_seconds", { table: "events" })).toEqual({ count: 4, sum: 3.65 });
  });

  it("sorts histograms among the other families", () => {
    const metrics = new Metrics().describe("z_total", "Z.").describeHistogram("m", "M.", [1]);
    metrics.observe("m", 2);
    const names = metrics
      .render()
      .split("\n")
      .filter((l) => l.startsWith("# TYPE"));
    expect(names).toEqual(["# TYPE m histogram", "# TYPE z_total counter"]);
  });

  it("rejects undeclared histograms and unordered buckets", () => {
    const metrics = new Metrics();
    expect(() => metrics.observe("nope", 1)).toThrow(/not declared/);
    expect(() => metrics.describeHistogram("h", "H.", [1, 1])).toThrow(RangeError);
  });
});
