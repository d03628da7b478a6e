/** Messages between the evaluation sandbox (main thread) and its worker. */
import type { PolicyContext } from "../../../core/policy/tenant-config.js";
import type { PublishedPolicy } from "../../../core/policy-bundle/published-policy.js";
import type { EvaluationResult } from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";

export interface EvaluationJob {
  id: number;
  wasm: Uint8Array;
  meta: PublishedPolicy;
  context: PolicyContext;
  /** The evaluation time, epoch ms. */
  nowMs: number;
  /** Cap of the policy's wasm linear memory, in 64 KiB pages. */
  maxMemoryPages: number;
}

export type EvaluationReply =
  /** Sent once, when the worker has loaded its modules. */
  | { ready: true }
  | { id: number; ok: true; result: EvaluationResult }
  | {
      id: number;
      ok: false;
      /** The wasm ran out of its capped linear memory (OPA aborted in opa_malloc). */
      outOfMemory: boolean;
      message: string;
    };
