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
}

interface CpuSample {
  atMs: number;
  client: NodeJS.CpuUsage;
  /** Busy ticks of the machine (/proc/stat), or undefined off Linux. */
  machineTicks?: number;
  /** utime+stime ticks per descendant pid. */
  descendants?: Map<number, number>;
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

/** utime+stime (ticks) of every descendant of `root`, from /proc. */
function readDescendantTicks(root: number): Map<number, number> | undefined {
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
  const out = new Map<number, number>();
  for (const [pid, value] of ticks) {
    let p = parent.get(pid);
    while (p !== undefined && p > 1 && p !== root) p = parent.get(p);
    if (p === root) out.set(pid, value);
  }
  return out;
}

function sampleCpu(): CpuSample {
  return {
    atMs: performance.now(),
    client: process.cpuUsage(),
    machineTicks: readProcStatTicks(),
    descendants: readDescendantTicks(process.pid),
  };
}

/**
 * Starts CPU accounting for a run; the returned function ends it. Off Linux
 * (no /proc), `servers` and `other` are NaN.
 */
export function startCpuAccounting(): () => CpuShares {
  const before = sampleCpu();
  return () => {
    const after = sampleCpu();
    const wallS = (after.atMs - before.atMs) / 1000;
    const client = process.cpuUsage(before.client);
    const clientS = (client.user + client.system) / 1e6;
    let serversS = Number.NaN;
    if (before.descendants && after.descendants) {
      serversS = 0;
      for (const [pid, ticks] of after.descendants) {
        serversS += (ticks - (before.descendants.get(pid) ?? 0)) / TICKS_PER_SECOND;
      }
    }
    const machineS =
      before.machineTicks !== undefined && after.machineTicks !== undefined
        ? (after.machineTicks - before.machineTicks) / TICKS_PER_SECOND
        : Number.NaN;
    const pct = (seconds: number) => (seconds / wallS) * 100;
    return {
      client: pct(clientS),
      servers: pct(serversS),
      other: pct(Math.max(0, machineS - clientS - serversS)),
    };
  };
}
