import type { Interceptor } from "@connectrpc/connect";
import { toConnectError } from "../errors/connect-codes.js";
import type { Logger } from "../logging/logger.js";

/**
 * The one place where errors leave a Connect service (edge and functions): every handler error passes through
 * `toConnectError`, so callers get a Connect code and a safe message, and
 * unexpected errors are logged instead of returned.
 */
export function errorInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (error) {
      throw toConnectError(error, (original) =>
        logger.error("rpc failed", { procedure: req.method.name, error: original }),
      );
    }
  };
}
