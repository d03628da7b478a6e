/** Policies that run too long for a dry run: shared by the sandbox tests and the integration tier. */

/** Runs for minutes and needs gigabytes of wasm memory on the main thread (the review's case). */
export const PATHOLOGICAL_REGO = `package fulcrum.policy

deny contains "huge" if count([y | some y in numbers.range(1, 30000000)]) > 0
`;

/** No allocation to speak of, only time: 4e12 iterations. */
export const SLOW_REGO = `package fulcrum.policy

deny contains "slow" if {
	some x in numbers.range(1, 2000000)
	some y in numbers.range(1, 2000000)
	x + y < 0
}
`;
