import type { DecisionName } from "./tenant-config.js";

/**
 * How decisions combine across policies: the strongest wins.
 * DENY beats REQUIRE_APPROVAL beats WARN beats ALLOW.
 */
const STRENGTH: Readonly<Record<DecisionName, number>> = {
  ALLOW: 0,
  WARN: 1,
  REQUIRE_APPROVAL: 2,
  DENY: 3,
};

export function strongestDecision(decisions: Iterable<DecisionName>): DecisionName {
  let strongest: DecisionName = "ALLOW";
  for (const decision of decisions) {
    if (STRENGTH[decision] > STRENGTH[strongest]) strongest = decision;
  }
  return strongest;
}

/** WARN still lets the call go ahead; the SDK's boolean helper follows this. */
export function isAllowed(decision: DecisionName): boolean {
  return decision === "ALLOW" || decision === "WARN";
}
