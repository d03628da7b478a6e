import type { Interceptor } from "@connectrpc/connect";
import { toConnectError } from "../errors/connect-codes.js";
import type { Logger } from "../logging/logger.js";

/**
 * The one place where errors leave a Connect service (edge and functions): every
 * handler error passes through `toConnectError`, so callers get a Connect code and a
 * safe message, and unexpected errors are logged instead of returned. A server stream
 * fails while it is iterated, after the handler returned, so its messages are wrapped
 * too.
 */
export function errorInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    const translate = (error: unknown) =>
      toConnectError(error, (original) =>
        logger.error("rpc failed", { procedure: req.method.name, error: original }),
      );
    try {
      const res = await next(req);
      if (!res.stream) return res;
      return { ...res, message: translated(res.message, translate) };
    } catch (error) {
      throw translate(error);
    }
  };
}

async function* translated<T>(
  messages: AsyncIterable<T>,
  translate: (error: unknown) => Error,
): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (error) {
    throw translate(error);
  }
}
