import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { createValidator, violationsToProto } from "@bufbuild/protovalidate";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { replay } from "./replay.js";

const validator = createValidator();

/**
 * Enforces the protovalidate annotations of every request message before a
 * handler sees it. A violation becomes InvalidArgument naming each field, with
 * the machine-readable `buf.validate.Violations` attached as an error detail.
 *
 * A server-streaming request is one message that arrives as a stream: it is
 * read and validated before the handler runs. Client and bidi streams are
 * validated message by message as the handler reads them.
 */
export const validationInterceptor: Interceptor = (next) => async (req) => {
  if (!req.stream) {
    validate(req.method.input, req.message);
    return next(req);
  }
  if (req.method.methodKind === "server_streaming") {
    const messages = req.message[Symbol.asyncIterator]();
    const first = await messages.next();
    if (!first.done) validate(req.method.input, first.value);
    // The first message again, then the rest, so connect-es still sees a missing or extra message.
    return next({ ...req, message: replay(first.done ? [] : [first.value], messages) });
  }
  return next({ ...req, message: validateEach(req.method.input, req.message) });
};

function validate(schema: DescMessage, message: MessageShape<DescMessage>): void {
  const result = validator.validate(schema, message);
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

async function* validateEach<T extends MessageShape<DescMessage>>(
  schema: DescMessage,
  messages: AsyncIterable<T>,
): AsyncIterable<T> {
  for await (const message of messages) {
    validate(schema, message);
    yield message;
  }
}
