import { pathToFileURL } from "node:url";

/** Runs `main` when the module at `moduleUrl` is the script node was started with. */
export function runIfMain(moduleUrl: string, main: () => Promise<void>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}

/** A long-running server CLI: close it, then exit, on Ctrl-C or SIGTERM. */
export function closeOnSignal(close: () => Promise<void>): void {
  const stop = () => void close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
