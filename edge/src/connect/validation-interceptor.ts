import { createValidator, violationsToProto } from "@bufbuild/protovalidate";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

const validator = createValidator();

/**
 * Enforces the protovalidate annotations of every request message before a
 * handler sees it. A violation becomes InvalidArgument naming each field, with
 * the machine-readable `buf.validate.Violations` attached as an error detail.
 */
export const validationInterceptor: Interceptor = (next) => async (req) => {
  if (!req.stream) {
    const result = validator.validate(req.method.input, req.message);
    if (result.kind === "invalid") {
      const [violations, desc] = violationsToProto(result.violations);
      const summary = result.violations.map((v) => v.toString()).join("; ");
      throw new ConnectError(`invalid request: ${summary}`, Code.InvalidArgument, undefined, [
        { desc, value: violations },
      ]);
    }
    if (result.kind === "error") {
      // A rule that cannot be evaluated is our bug, not the caller's.
      throw result.error;
    }
  }
  return next(req);
};
