/**
 * Structured JSON logs on the console (Workers Logs and `wrangler tail` pick
 * them up). Errors are reduced to name, message and stack; request bodies and
 * headers are never logged, so no API key or prompt text reaches the log.
 */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Name, message, stack and cause chain: enough to debug, nothing from the request. */
function serialiseError(error: Error, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: error.name,
    message: error.message,
    stack: error.stack,
  };
  if (error.cause !== undefined && depth < 3) {
    out.cause =
      error.cause instanceof Error ? serialiseError(error.cause, depth + 1) : String(error.cause);
  }
  return out;
}

function serialise(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = value instanceof Error ? serialiseError(value) : value;
  }
  return out;
}

export function createLogger(service: string): Logger {
  const write = (level: string, message: string, fields: Record<string, unknown> = {}) =>
    console.log(JSON.stringify({ level, service, message, ...serialise(fields) }));
  return {
    info: (message, fields) => write("info", message, fields),
    error: (message, fields) => write("error", message, fields),
  };
}
