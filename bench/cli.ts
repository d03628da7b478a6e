/**
 * What every bench script's entry needs: its knobs from the environment (positive
 * integers, with a clear error naming the variable) and running `main` only when the
 * file is invoked directly (so tests and other scripts can import its parts).
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

export function envInt(name: string, fallback: number): number {
  const value = process.env[name]?.trim();
  if (!value) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
  return n;
}

export function envInts(name: string, fallback: number[]): number[] {
  const value = process.env[name]?.trim();
  if (!value) return fallback;
  return value.split(",").map((part) => {
    const n = Number(part.trim());
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}: bad value "${part}"`);
    return n;
  });
}

/** Runs `main` when `moduleUrl` is the script node was started with; a failure exits 1. */
export function runIfMain(moduleUrl: string, name: string, main: () => Promise<void>): void {
  const invoked =
    process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(moduleUrl);
  if (!invoked) return;
  main().catch((error) => {
    console.error(`${name} failed: ${(error as Error).stack ?? error}`);
    process.exit(1);
  });
}
