import { create } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { createValidator } from "@bufbuild/protovalidate";
import { describe, expect, it } from "vitest";
import { EvaluationContextSchema } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { PolicySchema } from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { CreateApiKeyRequestSchema } from "../../proto/gen/fulcrum/tenant/v1/api_key_service_pb.js";

// Timestamps a caller sends are bounded to years 0001–9999 by the contracts themselves:
// outside that range a JavaScript Date is invalid and storing it would fail deep inside a
// handler (an Internal "safe to retry" for a request that can never succeed).
const validator = createValidator();
const far = create(TimestampSchema, { seconds: 10n ** 15n });
const ancient = create(TimestampSchema, { seconds: -(10n ** 12n) });
const fine = create(TimestampSchema, { seconds: 4_102_444_800n }); // 2100-01-01

describe("timestamp bounds", () => {
  it.each([
    [
      "CreateApiKeyRequest.expires_at",
      CreateApiKeyRequestSchema,
      "expiresAt",
      { name: "k", scopes: [2] },
    ],
    ["Policy.effective_at", PolicySchema, "effectiveAt", { name: "p" }],
    ["Policy.expires_at", PolicySchema, "expiresAt", { name: "p" }],
    ["EvaluationContext.timestamp", EvaluationContextSchema, "timestamp", {}],
  ] as const)(
    "%s refuses years outside 0001–9999 and accepts 2100",
    (_name, schema, field, base) => {
      for (const bad of [far, ancient]) {
        const result = validator.validate(
          schema as never,
          create(schema as never, { ...base, [field]: bad } as never),
        );
        expect(result.kind, `${field} = ${bad.seconds}`).toBe("invalid");
      }
      const ok = validator.validate(
        schema as never,
        create(schema as never, { ...base, [field]: fine } as never),
      );
      expect(ok.kind).toBe("valid");
    },
  );
});
