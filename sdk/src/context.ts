import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type EvaluationContextSchema,
  Phase,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import type { GuardContext } from "./client-options.js";
import { FulcrumError } from "./errors.js";

export type ContextInit = MessageInitShape<typeof EvaluationContextSchema>;

/** The wire context of a guard/evaluate/check call; throws InvalidArgument for bad input. */
export function toContext(context: GuardContext): ContextInit {
  const phase = context.phase ? Phase[context.phase] : undefined;
  if (context.phase && phase === undefined) {
    throw new FulcrumError("InvalidArgument", `unknown phase ${context.phase}`);
  }
  // Never a tenant id: the edge takes the tenant from the API key.
  return {
    workflowId: context.workflowId ?? "",
    envelopeId: context.envelopeId ?? "",
    userId: context.userId ?? "",
    userRoles: context.userRoles ?? [],
    phase: phase ?? Phase.UNSPECIFIED,
    action: context.action ?? "",
    modelId: context.model ?? "",
    toolNames: context.tools ?? [],
    inputText: context.inputText ?? "",
    outputText: context.outputText ?? "",
    arguments: argumentsText(context.arguments),
    estimatedCostUsd: context.estimatedCost ?? 0,
    estimatedTokens: tokens(context.estimatedTokens),
    attributes: context.attributes ?? {},
    ...(context.timestamp ? { timestamp: timestampFromMs(context.timestamp.getTime()) } : {}),
  };
}

const API_KEY_PREFIX = "fk_";
// Loose on purpose (the edge checks the exact shape): the prefix, then base64url.
const API_KEY_SHAPE = /^fk_[A-Za-z0-9_-]+$/;

/** The key, trimmed; a clear error (never repeating the key) when it cannot be one. */
export function checkApiKey(apiKey: unknown): string {
  if (apiKey === undefined || apiKey === null || apiKey === "") {
    throw new FulcrumError(
      "InvalidArgument",
      "apiKey is required: pass the Fulcrum API key (fk_…) that names your tenant",
    );
  }
  const key = typeof apiKey === "string" ? apiKey.trim() : "";
  if (!API_KEY_SHAPE.test(key)) {
    throw new FulcrumError(
      "InvalidArgument",
      `apiKey does not look like a Fulcrum API key: expected "${API_KEY_PREFIX}" followed by base64url characters, exactly as shown when the key was created`,
    );
  }
  return key;
}

const UINT32_MAX = 0xffff_ffff;

function tokens(value: number | undefined): number {
  if (value === undefined) return 0;
  if (!Number.isFinite(value) || value < 0 || Math.ceil(value) > UINT32_MAX) {
    throw new FulcrumError(
      "InvalidArgument",
      `estimatedTokens must be a number of tokens between 0 and ${UINT32_MAX}`,
    );
  }
  return Math.ceil(value);
}

const MAX_ARGUMENTS_BYTES = 65_536;

/** The context's `arguments` as JSON text (a string as is); throws when too large. */
function argumentsText(value: unknown): string {
  if (value === undefined || value === null) return "";
  let text: string;
  try {
    text = typeof value === "string" ? value : (JSON.stringify(value) ?? "");
  } catch (error) {
    throw new FulcrumError(
      "InvalidArgument",
      `arguments must be JSON-serializable: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (new TextEncoder().encode(text).length > MAX_ARGUMENTS_BYTES) {
    throw new FulcrumError(
      "InvalidArgument",
      `arguments must be at most ${MAX_ARGUMENTS_BYTES} bytes of JSON`,
    );
  }
  return text;
}

export function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new FulcrumError("InvalidArgument", `${name} must be a positive number of ms`);
  }
  return value;
}
