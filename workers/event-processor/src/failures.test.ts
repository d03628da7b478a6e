import { ClickHouseError } from "@clickhouse/client";
import { describe, expect, it } from "vitest";
import {
  describeFailure,
  isClickHouseRejection,
  isPostgresRejection,
  redeliveryDelayMs,
  sqlState,
} from "./failures.js";

const chError = (code: string) =>
  new ClickHouseError({ message: "Cannot parse", code, type: "CANNOT_PARSE_UUID" });

describe("failures", () => {
  it("backs off 1 s × 2^(deliveries-1), capped at 60 s", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 50].map(redeliveryDelayMs)).toEqual([
      1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000,
    ]);
  });

  it("treats ClickHouse data errors as rejections, everything else as transient", () => {
    expect(isClickHouseRejection(chError("376"))).toBe(true);
    expect(isClickHouseRejection(chError("252"))).toBe(false); // TOO_MANY_PARTS
    expect(isClickHouseRejection(new Error("connect ECONNREFUSED"))).toBe(false);
  });

  it("treats PostgreSQL classes 22 and 23 as rejections, found through causes", () => {
    const fk = Object.assign(new Error("wrapped"), { cause: { code: "23503" } });
    expect(sqlState(fk)).toBe("23503");
    expect(isPostgresRejection(fk)).toBe(true);
    expect(isPostgresRejection({ code: "22001" })).toBe(true);
    expect(isPostgresRejection({ code: "57P01" })).toBe(false);
    expect(isPostgresRejection(Object.assign(new Error("x"), { code: "ECONNREFUSED" }))).toBe(
      false,
    );
  });

  it("describes database errors without their messages (they carry parameters)", () => {
    const drizzle = Object.assign(new Error("Failed query: insert … params: secret@x"), {
      cause: { code: "23503" },
    });
    expect(describeFailure(drizzle)).toBe("PostgreSQL SQLSTATE 23503");
    expect(describeFailure(chError("376"))).toBe("ClickHouse 376 CANNOT_PARSE_UUID");
  });
});
