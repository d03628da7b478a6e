/**
 * AWS Lambda entry of budget reconciliation (budgets/reconcile.ts), invoked every minute
 * by the SST cron in sst.config.ts — the deployed counterpart of the functions Node
 * server's 60 s loop (the management Lambda itself runs only while answering calls).
 * Configured by the same environment as the management API (config.ts); the
 * dependencies are built once per container and reused across invocations.
 */
import { parseFunctionsConfig } from "../config.js";
import { createFunctionsDeps, type FunctionsDeps } from "../deps.js";
import { reconcileBudgets } from "./reconcile.js";

let deps: FunctionsDeps | undefined;

export async function handler(): Promise<Record<string, unknown>> {
  deps ??= createFunctionsDeps(parseFunctionsConfig(process.env));
  const report = await reconcileBudgets(deps);
  const summary = { ...report, failures: report.failures.length };
  deps.logger.info("budget reconciliation", summary);
  // A failed step is logged, counted and retried next minute; failing the invocation
  // would only make EventBridge retry the whole run at once.
  return summary;
}
