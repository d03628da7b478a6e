import { connect } from "node:net";

/**
 * Protocol-level health checks. An open TCP port proves nothing (another program, or a
 * server still starting), so each probe speaks just enough of the real protocol.
 */
export type ProbeResult =
  | { healthy: true; detail: string }
  | { healthy: false; listening: boolean; detail: string };

class ProbeFailure extends Error {
  override readonly name = "ProbeFailure";
  constructor(
    readonly listening: boolean,
    message: string,
  ) {
    super(message);
  }
}

/** Connects, sends `request`, collects bytes until `complete(data)` or the timeout. */
function exchange(
  host: string,
  port: number,
  request: Buffer | undefined,
  complete: (data: Buffer) => boolean,
  timeoutMs: number,
  farewell?: Buffer,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let data = Buffer.alloc(0);
    let connected = false;
    let settled = false;
    const finish = (error?: ProbeFailure) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!error && farewell) socket.end(farewell);
      else socket.destroy();
      if (error) reject(error);
      else resolve(data);
    };
    const timer = setTimeout(
      () => finish(new ProbeFailure(connected, `no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on("connect", () => {
      connected = true;
      if (request) socket.write(request);
    });
    socket.on("data", (chunk) => {
      data = Buffer.concat([data, chunk]);
      if (complete(data)) finish();
    });
    socket.on("error", (error) => finish(new ProbeFailure(connected, error.message)));
    socket.on("close", () => finish(new ProbeFailure(connected, "connection closed early")));
  });
}

async function probe(run: () => Promise<ProbeResult>): Promise<ProbeResult> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof ProbeFailure) {
      return { healthy: false, listening: error.listening, detail: error.message };
    }
    throw error;
  }
}

// --- PostgreSQL: a v3 StartupMessage, then read until authentication is decided.

interface PgMessage {
  type: string;
  body: Buffer;
}

function pgMessages(data: Buffer): PgMessage[] {
  const messages: PgMessage[] = [];
  let offset = 0;
  while (offset + 5 <= data.length) {
    const length = data.readInt32BE(offset + 1);
    if (offset + 1 + length > data.length) break;
    messages.push({
      type: String.fromCharCode(data[offset] ?? 0),
      body: data.subarray(offset + 5, offset + 1 + length),
    });
    offset += 1 + length;
  }
  return messages;
}

/** The fields of an ErrorResponse: C = SQLSTATE, M = message. */
function pgErrorFields(body: Buffer): Record<string, string> {
  const fields: Record<string, string> = {};
  let offset = 0;
  while (offset < body.length && body[offset] !== 0) {
    const end = body.indexOf(0, offset + 1);
    fields[String.fromCharCode(body[offset] ?? 0)] = body.toString("utf8", offset + 1, end);
    offset = end + 1;
  }
  return fields;
}

export interface PgTarget {
  host: string;
  port: number;
  user: string;
  database: string;
  hasPassword: boolean;
}

export function probePostgres(target: PgTarget, timeoutMs = 2000): Promise<ProbeResult> {
  const params = Buffer.from(`user\0${target.user}\0database\0${target.database}\0\0`);
  const startup = Buffer.alloc(8);
  startup.writeInt32BE(8 + params.length, 0);
  startup.writeInt32BE(196608, 4); // protocol 3.0
  const terminate = Buffer.from([0x58, 0, 0, 0, 4]); // 'X': polite goodbye, no log noise
  const decided = (data: Buffer) =>
    pgMessages(data).some(
      (m) => m.type === "E" || m.type === "Z" || (m.type === "R" && m.body.readInt32BE(0) !== 0),
    );
  return probe(async () => {
    const data = await exchange(
      target.host,
      target.port,
      Buffer.concat([startup, params]),
      decided,
      timeoutMs,
      terminate,
    );
    for (const message of pgMessages(data)) {
      if (message.type === "Z") return { healthy: true, detail: "accepting connections" };
      if (message.type === "R" && message.body.readInt32BE(0) !== 0) {
        // 3 = cleartext, 5 = MD5, 10 = SASL (SCRAM): the server is up but wants a password.
        if (target.hasPassword)
          return { healthy: true, detail: "accepting connections (password)" };
        return {
          healthy: false,
          listening: true,
          detail: `PostgreSQL asks user "${target.user}" for a password and the URL has none`,
        };
      }
      if (message.type === "E") {
        const fields = pgErrorFields(message.body);
        // 3D000: the database is missing, yet the server itself is fine to reuse.
        if (fields.C === "3D000") return { healthy: true, detail: fields.M ?? "database missing" };
        return { healthy: false, listening: true, detail: `${fields.C}: ${fields.M}` };
      }
    }
    return { healthy: false, listening: true, detail: "not a PostgreSQL answer" };
  });
}

// --- Redis: RESP PING (after AUTH when the URL carries credentials) → +PONG.

function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`;
}

export function probeRedis(
  host: string,
  port: number,
  auth?: { user?: string; password: string },
  timeoutMs = 2000,
): Promise<ProbeResult> {
  const commands: string[] = [];
  if (auth)
    commands.push(auth.user ? resp("AUTH", auth.user, auth.password) : resp("AUTH", auth.password));
  commands.push(resp("PING"));
  const lines = (data: Buffer) => data.toString().split("\r\n").slice(0, -1);
  return probe(async () => {
    const data = await exchange(
      host,
      port,
      Buffer.from(commands.join("")),
      (d) => lines(d).length >= commands.length,
      timeoutMs,
    );
    const replies = lines(data);
    const last = replies[commands.length - 1];
    if (last === "+PONG") return { healthy: true, detail: "PONG" };
    const error = replies.find((line) => line.startsWith("-"));
    return { healthy: false, listening: true, detail: error ?? `unexpected reply ${replies[0]}` };
  });
}

// --- NATS: the server greets with `INFO {json}`; JetStream must be enabled in it.

export function probeNats(host: string, port: number, timeoutMs = 2000): Promise<ProbeResult> {
  return probe(async () => {
    const data = await exchange(host, port, undefined, (d) => d.includes("\r\n"), timeoutMs);
    const line = data.toString().split("\r\n")[0] ?? "";
    if (!line.startsWith("INFO ")) {
      return { healthy: false, listening: true, detail: "no NATS INFO banner" };
    }
    let info: { jetstream?: boolean; version?: string };
    try {
      info = JSON.parse(line.slice(5));
    } catch {
      return { healthy: false, listening: true, detail: "unreadable NATS INFO banner" };
    }
    if (info.jetstream !== true) {
      return {
        healthy: false,
        listening: true,
        detail: `nats-server ${info.version} runs without JetStream (start it with -js)`,
      };
    }
    return { healthy: true, detail: `nats-server ${info.version}, JetStream on` };
  });
}
