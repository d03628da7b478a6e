/**
 * The ClickHouse HTTP interface, as far as `@clickhouse/client` uses it, in front of one
 * embedded chdb session (ClickHouse 26.7). No npm package ships a ClickHouse server and
 * Debian's 18.16 lacks DateTime64, TTL and query parameters; chdb has the engine but no
 * server, hence this front. Any real ClickHouse server can replace it (CLICKHOUSE_URL).
 *
 * Run as a process: `tsx scripts/lib/chdb-http-server.ts --port 8123 --data .tmp/ch`.
 */
import { createServer, type IncomingMessage } from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { gunzipSync, gzipSync } from "node:zlib";
import { ensureChdbInstalled } from "../services/chdb-install.js";
import { stderrLog } from "../services/process.js";
import { closeOnSignal, runIfMain } from "./cli.js";

export interface ChdbHttpServer {
  url: string;
  close(): Promise<void>;
}

interface NativeResult {
  bytes: Buffer;
  elapsed: number;
  rowsRead: number;
  bytesRead: number;
}

/** What this server uses of chdb (loaded at run time from scripts/services/chdb/). */
interface ChdbSession {
  readonly connection: unknown;
  close(): void;
}
interface NativeChdb {
  QueryAsyncConnection(
    connection: unknown,
    sql: string,
    format: string,
    params?: Record<string, string>,
  ): Promise<NativeResult>;
}

/**
 * chdb's Session and its native binding, from the install in scripts/services/chdb/.
 * The client sends `param_x=<value already escaped the ClickHouse way>`. chdb's public
 * queryBindAsync escapes every string again (a `\t` would come back as backslash-t),
 * so we hand the values, unchanged, to the native call queryBindAsync itself ends in.
 * Not an exported path of chdb: the version is pinned in scripts/services/chdb/.
 */
function loadChdb(): {
  Session: new (dir: string, options: { connectionArgs: string[] }) => ChdbSession;
  native: NativeChdb;
} {
  const packageDir = ensureChdbInstalled(stderrLog);
  const load = createRequire(join(packageDir, "package.json"));
  const { Session } = load("./index.js");
  return { Session, native: load("./dist/loader.js").loadNative() };
}

// URL keys that are not settings. Everything else on the query string is one.
// (enable_http_compression is one, but it is about HTTP: handled here, not by the engine.)
const NOT_SETTINGS = new Set([
  "query",
  "query_id",
  "database",
  "default_format",
  "user",
  "enable_http_compression",
]);
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const quote = (value: string) => `'${value.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;

/**
 * @example
 * const server = await startChdbHttpServer({ port: 8123, dataDir: ".tmp/services/clickhouse" });
 * const client = createClient({ url: server.url });
 */
export async function startChdbHttpServer(options: {
  port: number;
  host?: string;
  dataDir: string;
}): Promise<ChdbHttpServer> {
  const host = options.host ?? "127.0.0.1";
  // One process may own one data directory, and one session runs one query at a time.
  // clickhouse-local's defaults differ from a server's where clients notice: a server
  // quotes 64-bit integers in JSON (JS numbers lose precision past 2^53).
  const { Session, native } = loadChdb();
  const session = new Session(options.dataDir, {
    connectionArgs: ["--output_format_json_quote_64bit_integers=1"],
  });
  let queue: Promise<unknown> = Promise.resolve();
  const serialized = <T>(work: () => Promise<T>): Promise<T> => {
    const run = queue.then(work, work);
    queue = run.catch(() => {});
    return run;
  };
  const run = (sql: string, format: string, params?: Record<string, string>) =>
    native.QueryAsyncConnection(session.connection, sql, format, params);

  async function execute(url: URL, body: string) {
    const search = url.searchParams;
    const params: Record<string, string> = {};
    const settings: [string, string][] = [];
    for (const [key, value] of search) {
      if (key.startsWith("param_")) params[key.slice(6)] = value;
      else if (!NOT_SETTINGS.has(key)) {
        if (!IDENTIFIER.test(key)) {
          throw new Error(`Code: 115. DB::Exception: Unknown setting ${key}. (UNKNOWN_SETTING)`);
        }
        settings.push([key, value]);
      }
    }
    // An INSERT's data follows its `FORMAT X` line, as in clickhouse-local.
    const query = search.get("query");
    const sql = query ? (body ? `${query}\n${body}` : query) : body;
    // After every query the session is back in `default`, so that needs no USE.
    const database = search.get("database") === "default" ? null : search.get("database");
    const prefix = [
      database ? `USE \`${database.replaceAll("`", "\\`")}\`` : "",
      settings.length ? `SET ${settings.map(([k, v]) => `${k} = ${quote(v)}`).join(", ")}` : "",
    ].filter(Boolean);
    return serialized(async () => {
      try {
        return await run(
          [...prefix, sql].join(";\n"),
          search.get("default_format") ?? "TabSeparated",
          params,
        );
      } finally {
        // USE and SET outlive the query in a session: put both back for the next caller.
        if (prefix.length) {
          const reset = settings.map(([k]) => `SET ${k} = DEFAULT`);
          await run(["USE default", ...reset].join(";\n"), "TabSeparated").catch(() => {});
        }
      }
    });
  }

  const server = createServer(async (request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    if (url.pathname === "/ping") return void response.end("Ok.\n");
    const queryId = url.searchParams.get("query_id") ?? crypto.randomUUID();
    response.setHeader("X-ClickHouse-Query-Id", queryId);
    try {
      const body = await readBody(request);
      const result = await execute(url, body);
      response.setHeader(
        "X-ClickHouse-Summary",
        JSON.stringify({
          read_rows: String(result.rowsRead),
          read_bytes: String(result.bytesRead),
          elapsed_ns: String(Math.round(result.elapsed * 1e9)),
        }),
      );
      const gzip =
        url.searchParams.get("enable_http_compression") === "1" &&
        /\bgzip\b/.test(request.headers["accept-encoding"] ?? "");
      if (gzip) response.setHeader("Content-Encoding", "gzip");
      response.end(gzip ? gzipSync(result.bytes) : result.bytes);
    } catch (error) {
      // ClickHouse's own shape: the client parses `Code: N. DB::Exception: … (TYPE)`.
      const message = error instanceof Error ? error.message : String(error);
      const code = /Code: (\d+)/.exec(message)?.[1] ?? "1001";
      response.statusCode = 500;
      response.setHeader("X-ClickHouse-Exception-Code", code);
      response.end(
        `${message.startsWith("Code:") ? message : `Code: ${code}. DB::Exception: ${message}`}\n`,
      );
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, resolve);
  });
  return {
    url: `http://${host}:${options.port}`,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await queue;
      session.close();
    },
  };
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  return (request.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw).toString("utf8");
}

runIfMain(import.meta.url, async () => {
  const { values } = parseArgs({ options: { port: { type: "string" }, data: { type: "string" } } });
  if (!values.port || !values.data)
    throw new Error("usage: chdb-http-server.ts --port N --data DIR");
  const started = Date.now();
  const server = await startChdbHttpServer({ port: Number(values.port), dataDir: values.data });
  console.log(
    `chdb HTTP server ready at ${server.url} (data ${values.data}, ${Date.now() - started} ms)`,
  );
  closeOnSignal(server.close);
});
