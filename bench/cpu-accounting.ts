/**
 * CPU accounting for benchmark runs on Linux (/proc): how much of the
 * machine the load generator, the servers under test and everything else
 * used, so a run disturbed by other work can be recognised.
 */
import { readdirSync, readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

/** CPU used during a run, each in % of one core (100 % = one core busy for the whole run). */
export interface CpuShares {
  /** This process: the load generator. */
  client: number;
  /** Every process this one started (servers under test, idle ones included). */
  servers: number;
  /**
   * Everything else on the machine (other processes, hypervisor steal):
   * interference from outside the benchmark. Interrupt time is not counted.
   */
  other: number;
  /**
   * Named parts of `servers`: each the process tree (the process and its
   * descendants) of the pid given to startCpuAccounting under that name.
   */
  parts: Record<string, number>;
}

interface CpuSample {
  atMs: number;
  client: NodeJS.CpuUsage;
  /** Busy ticks of the machine (/proc/stat), or undefined off Linux. */
  machineTicks?: number;
  /** utime+stime ticks per descendant pid. */
  descendants?: Map<number, number>;
  /** The same, per named process tree. */
  parts?: Record<string, Map<number, number>>;
}

const TICKS_PER_SECOND = 100; // USER_HZ, 100 on every Linux the benchmarks run on.

function readProcStatTicks(): number | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …: busy = user + nice + system + steal.
    // irq/softirq are left out: loopback networking of the benchmark's own
    // traffic is accounted there, to no process.
    const [user = 0, nice = 0, system = 0, , , , , steal = 0] = fields;
    return user + nice + system + steal;
  } catch {
    return undefined;
  }
}

interface ProcessTicks {
  /** utime+stime ticks per pid. */
  ticks: Map<number, number>;
  parent: Map<number, number>;
}

/** utime+stime (ticks) and parent of every process, from /proc. */
function readProcessTicks(): ProcessTicks | undefined {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined;
  }
  const parent = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      // Fields after "(comm)": state ppid … utime(14) stime(15), 1-based in proc(5).
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parent.set(Number(pid), Number(rest[1]));
      ticks.set(Number(pid), Number(rest[11]) + Number(rest[12]));
    } catch {}
  }
  return { ticks, parent };
}

/** Ticks of every process in the tree of `root` (itself included when `self`). */
function treeTicks(all: ProcessTicks, root: number, self: boolean): Map<number, number> {
  const out = new Map<number, number>();
  for (const [pid, value] of all.ticks) {
    if (pid === root) {
      if (self) out.set(pid, value);
      continue;
    }
    let p = all.parent.get(pid);
    while (p !== undefined && p > 1 && p !== root) p = all.parent.get(p);
    if (p === root) out.set(pid, value);
  }
  return out;
}

function sampleCpu(parts: Record<string, number>): CpuSample {
  const all = readProcessTicks();
  return {
    atMs: performance.now(),
    client: process.cpuUsage(),
    machineTicks: readProcStatTicks(),
    descendants: all && treeTicks(all, process.pid, false),
    parts:
      all &&
      Object.fromEntries(
        Object.entries(parts).map(([name, pid]) => [name, treeTicks(all, pid, true)]),
      ),
  };
}

/** Ticks gained between two samples of the same set of processes, in seconds. */
function gainedS(before: Map<number, number>, after: Map<number, number>): number {
  let ticks = 0;
  for (const [pid, value] of after) ticks += value - (before.get(pid) ?? 0);
  return ticks / TICKS_PER_SECOND;
}

/**
 * Starts CPU accounting for a run; the returned function ends it. `parts` names
 * process trees (by root pid) whose share is reported on its own. Off Linux (no
 * /proc), `servers`, `other` and the parts are NaN.
 */
export function startCpuAccounting(parts: Record<string, number> = {}): () => CpuShares {
  const before = sampleCpu(parts);
  return () => {
    const after = sampleCpu(parts);
    const wallS = (after.atMs - before.atMs) / 1000;
    const client = process.cpuUsage(before.client);
    const clientS = (client.user + client.system) / 1e6;
    const serversS =
      before.descendants && after.descendants
        ? gainedS(before.descendants, after.descendants)
        : Number.NaN;
    const machineS =
      before.machineTicks !== undefined && after.machineTicks !== undefined
        ? (after.machineTicks - before.machineTicks) / TICKS_PER_SECOND
        : Number.NaN;
    const pct = (seconds: number) => (seconds / wallS) * 100;
    const partShares: Record<string, number> = {};
    for (const name of Object.keys(parts)) {
      const b = before.parts?.[name];
      const a = after.parts?.[name];
      partShares[name] = a && b ? pct(gainedS(b, a)) : Number.NaN;
    }
    return {
      client: pct(clientS),
      servers: pct(serversS),
      other: pct(Math.max(0, machineS - clientS - serversS)),
      parts: partShares,
    };
  };
}

/** The pids of this process's direct children (empty off Linux). */
export function childPids(): Set<number> {
  const all = readProcessTicks();
  const out = new Set<number>();
  for (const [pid, parent] of all?.parent ?? []) if (parent === process.pid) out.add(pid);
  return out;
}
