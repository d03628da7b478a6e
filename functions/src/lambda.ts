/**
 * AWS Lambda entry (function URL or API Gateway): the same Hono app as server.ts,
 * built once per container. The environment is parsed on the first invocation; a bad
 * one answers every request with Unavailable and BAD_ENVIRONMENT, naming the variable.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { Hono } from "hono";
// Hono marks this adapter deprecated in favour of `@hono/aws-lambda`, which is not on the
// npm registry yet; switch when it is.
import { handle } from "hono/aws-lambda";
import { wireError } from "../../core/connect/wire-errors.js";
import { createFunctionsApp } from "./app.js";
import { BadEnvironmentError, parseFunctionsConfig } from "./config.js";
import { createFunctionsDeps, type FunctionsDeps } from "./deps.js";

let deps: FunctionsDeps | undefined;

function build(): Hono {
  try {
    const config = parseFunctionsConfig(process.env);
    deps = createFunctionsDeps(config);
    return createFunctionsApp(deps, config.environment);
  } catch (error) {
    if (!(error instanceof BadEnvironmentError)) throw error;
    console.error(
      JSON.stringify({ level: "error", message: "BAD_ENVIRONMENT", reason: error.message }),
    );
    const refusal = new ConnectError(`BAD_ENVIRONMENT: ${error.message}`, Code.Unavailable);
    return new Hono().all("*", () => wireError("connect", refusal));
  }
}

export const handler = handle(build());

/**
 * Closes the container's database pools: for a runtime shutdown hook, and for tests
 * that drive the handler in-process.
 */
export async function shutdown(): Promise<void> {
  await deps?.close();
}
