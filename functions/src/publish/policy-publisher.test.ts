import type { Redis } from "@upstash/redis";
import { describe, expect, it } from "vitest";
import { type PolicyPointer, policyKeysIn } from "../../../core/distribution/policy-keys.js";
import { createRedisPolicyPublisher, type PointerUpdate } from "./policy-publisher.js";

/** A Redis that records the pointer JSON `point` passes to its script. */
function recordingRedis() {
  const pointers: PolicyPointer[] = [];
  const redis = {
    eval: async (_script: string, _keys: string[], args: string[]) => {
      pointers.push(JSON.parse(args[3] as string) as PolicyPointer);
      return 1;
    },
  } as unknown as Redis;
  return { redis, pointers };
}

const update: PointerUpdate = {
  tenantId: "t1",
  policyId: "p1",
  version: 2,
  revision: 5,
  sha256: "s",
  wasmSha256: "w",
};

describe("PolicyPublisher.point", () => {
  const now = () => new Date("2025-01-02T03:04:05Z");

  it("writes the policy's name in the pointer", async () => {
    const { redis, pointers } = recordingRedis();
    await createRedisPolicyPublisher(redis, policyKeysIn("ns"), now).point({
      ...update,
      name: "block deletes",
    });
    expect(pointers).toEqual([
      {
        version: 2,
        revision: 5,
        sha256: "s",
        wasm_sha256: "w",
        updated_at: "2025-01-02T03:04:05.000Z",
        name: "block deletes",
      },
    ]);
  });

  it("leaves the name out when the update has none (a deactivation)", async () => {
    const { redis, pointers } = recordingRedis();
    await createRedisPolicyPublisher(redis, policyKeysIn("ns"), now).point({
      ...update,
      version: 0,
      sha256: "",
      wasmSha256: "",
    });
    expect(pointers[0]).not.toHaveProperty("name");
  });
});
