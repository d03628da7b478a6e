/**
 * What a settle takes from the reservation it names (reservation-lookup.ts): the calls it
 * reserved as a floor, and the envelope it was reserved for.
 */
import { sql } from "drizzle-orm";
import { invalid } from "../../../core/errors/fulcrum-error.js";
import type { Tx } from "../db/tenant-transaction.js";
import type { ReservationHint } from "./reservation-lookup.js";
import type { UsageInput } from "./usage-input.js";

/**
 * The usage with at least the calls the reservation reserved (one LLM call before an LLM
 * call, one tool call per tool before a tool call). Calls are counted from the
 * reservation because the decision that reserved them admitted the call: it happened,
 * whatever the settle reports (SDKs send `tool_calls` 0 by default, and `llm_calls` 0
 * with a cost alone), and counting the request's 0 while releasing the reservation would
 * let max_llm_calls / max_tool_calls never be reached. Tokens, cost and time are not
 * floored: the reservation only estimated them, the settle's figures are the measured ones.
 * A settle reporting more calls than reserved counts what it reports.
 */
export function withReservedCalls(input: UsageInput, hint: ReservationHint): UsageInput {
  const reserved = hint.reservedCalls;
  if (!reserved) return input;
  return {
    ...input,
    llmCalls: Math.max(input.llmCalls, reserved.llmCalls),
    toolCalls: Math.max(input.toolCalls, reserved.toolCalls),
  };
}

/**
 * Refuses a settle naming an envelope the reservation was not made for: counting it there
 * would charge one envelope while releasing another's reservation. A reservation without
 * envelope counters (the envelope and its ancestors have no limits, or the edge did not
 * know it) cannot tell, so any envelope_id is taken as given.
 *
 * @throws FulcrumError Invalid naming envelope_id.
 */
export function checkReservationEnvelope(input: UsageInput, hint: ReservationHint): void {
  const named = input.envelopeId?.toLowerCase();
  if (!named || hint.envelopeIds.length === 0 || hint.envelopeIds.includes(named)) return;
  throw invalid(
    "envelope_id",
    `reservation ${input.reservationId} was made for another envelope (${hint.envelopeIds.join(", ")}), not ${input.envelopeId}; leave envelope_id unset to charge the one it was made for`,
  );
}

/** A parent chain longer than this is a cycle or a mistake (as envelope-usage.ts). */
const MAX_DEPTH = 64;

/**
 * The envelope a reservation was made for, from its `env:<id>` counters (the call's
 * envelope and its ancestors): the one whose ancestors include the most of the others —
 * the deepest, normally all the others. Ids the tenant has no envelope for are ignored;
 * undefined when none is left.
 */
export async function reservedEnvelope(
  tx: Tx,
  envelopeIds: readonly string[],
): Promise<string | undefined> {
  if (envelopeIds.length === 0) return undefined;
  const ids = `{${envelopeIds.join(",")}}`;
  const { rows } = await tx.execute<{ id: string }>(sql`
    with recursive up(start, id, parent, depth) as (
      select id, id, parent_envelope_id, 0 from envelopes where id = any(${ids}::uuid[])
      union all
      select u.start, e.id, e.parent_envelope_id, u.depth + 1
        from envelopes e join up u on e.id = u.parent
       where u.depth < ${MAX_DEPTH}
    )
    select start::text as id from up
     group by start
     order by count(*) filter (where id = any(${ids}::uuid[])) desc, max(depth) desc, start
     limit 1`);
  return rows[0]?.id;
}
