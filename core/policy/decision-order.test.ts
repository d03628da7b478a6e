import { describe, expect, it } from "vitest";
import { isAllowed, strongestDecision } from "./decision-order.js";

describe("strongestDecision", () => {
  it("is ALLOW when nothing was decided", () => {
    expect(strongestDecision([])).toBe("ALLOW");
  });

  it("orders DENY > REQUIRE_APPROVAL > WARN > ALLOW whatever the input order", () => {
    expect(strongestDecision(["WARN", "ALLOW"])).toBe("WARN");
    expect(strongestDecision(["ALLOW", "REQUIRE_APPROVAL", "WARN"])).toBe("REQUIRE_APPROVAL");
    expect(strongestDecision(["DENY", "REQUIRE_APPROVAL"])).toBe("DENY");
    expect(strongestDecision(["REQUIRE_APPROVAL", "DENY", "WARN"])).toBe("DENY");
  });
});

describe("isAllowed", () => {
  it("lets ALLOW and WARN through and stops DENY and REQUIRE_APPROVAL", () => {
    expect(isAllowed("ALLOW")).toBe(true);
    expect(isAllowed("WARN")).toBe(true);
    expect(isAllowed("DENY")).toBe(false);
    expect(isAllowed("REQUIRE_APPROVAL")).toBe(false);
  });
});
