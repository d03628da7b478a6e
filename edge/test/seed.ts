/**
 * What test/harness/workerd-setup.ts (the workerd tier's globalSetup, in Node) seeds in
 * a real Redis before the Worker under test starts, and hands to the tests through
 * `inject`. Types only, plus `seed()`: the setup imports the types, the tests the values.
 *
 * The tenant's bundle is built from the committed compiled fixtures in
 * ./fixtures/evaluator/ (deletes.rego, payments.rego), so every decision the tests
 * expect is what those policies really say.
 */
import { inject } from "vitest";

/** The seeded tenant and its keys (secrets shaped `fk_` + 43 base64url characters). */
export interface WorkerdSeed {
  tenantId: string;
  /** A well-formed tenant id that is not the keys' tenant. */
  otherTenantId: string;
  /** A usable key of `tenantId` with the `check` scope. */
  checkKey: string;
  /** A usable key of `tenantId` with only the `manage` scope. */
  manageKey: string;
  /** A `check` key of `tenantId` whose record says it expired (2020). */
  expiredKey: string;
  /** A well-formed key with no record. */
  unknownKey: string;
  /** The tenant's active policies, as the fixtures name them. */
  policies: {
    /** deletes.rego, version 2, priority 10, named "Deletes". */
    deletes: { id: "deletes"; version: 2; name: "Deletes" };
    /** payments.rego, version 1, priority 0, named "Payments". */
    payments: { id: "payments"; version: 1; name: "Payments" };
  };
}

/** Where the Worker under test reads Redis (the project's Upstash REST server). */
export interface WorkerdRedis {
  restUrl: string;
  restToken: string;
  namespace: string;
}

/** The tier's own NATS: the Worker publishes to `wsUrl`; tests drive it through `controlUrl`. */
export interface WorkerdNats {
  wsUrl: string;
  /** test/harness/nats-control-server.ts: /pause, /resume, /streams/delete, /messages. */
  controlUrl: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    workerdSeed: WorkerdSeed;
    workerdRedis: WorkerdRedis;
    workerdNats: WorkerdNats;
  }
}

/** The seeded tenant and keys (call inside a test file of the workerd project). */
export function seed(): WorkerdSeed {
  return inject("workerdSeed");
}
