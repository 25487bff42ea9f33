// A small SQL connection interface with two drivers, so the Postgres store runs unchanged on a Postgres
// server (node-postgres, `pg`, loaded only when a postgres:// store is opened) and on PGlite in-process
// (Postgres compiled to WebAssembly; the tests use it, the library does not depend on it).
import { StoreUnavailableError } from "./types.js";

export interface SqlRunner {
  /** One statement with $1… parameters. */
  query<R extends object>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  /** Several statements, no parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface SqlClient extends SqlRunner {
  /** Where the client points (no password), for messages. */
  readonly label: string;
  /** Runs `fn` in one transaction on one connection: COMMIT when it resolves, ROLLBACK when it throws. */
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** What the store needs of a PGlite instance (structural, so src/ does not import the package). */
export interface PGliteLike {
  query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
  exec(sql: string): Promise<unknown>;
  transaction<T>(fn: (tx: PGliteTxLike) => Promise<T>): Promise<T>;
  readonly closed: boolean;
}

export interface PGliteTxLike {
  query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
  exec(sql: string): Promise<unknown>;
}

/** A client over an open PGlite instance (closing the client leaves the instance open). */
export function pgliteClient(db: PGliteLike, label = "pglite"): SqlClient {
  const guard = <T>(p: () => Promise<T>): Promise<T> => {
    if (db.closed) return Promise.reject(new StoreUnavailableError(label, "the PGlite instance is closed"));
    return p();
  };
  const runner = (r: PGliteTxLike): SqlRunner => ({
    query: async <R extends object>(sql: string, params?: readonly unknown[]) =>
      (await r.query<R>(sql, params === undefined ? undefined : [...params])).rows,
    exec: async (sql: string) => {
      await r.exec(sql);
    },
  });
  const direct = runner(db);
  return {
    label,
    query: (sql, params) => guard(() => direct.query(sql, params)),
    exec: (sql) => guard(() => direct.exec(sql)),
    transaction: (fn) => guard(() => db.transaction((tx) => fn(runner(tx)))),
    close: async () => {},
  };
}

/** Connection-level failures of node-postgres and Postgres itself (SQLSTATE class 08, 57P0x shutdowns). */
export function isConnectionError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string") {
    if (/^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH)$/.test(code))
      return true;
    if (code.startsWith("08") || /^57P0[1-3]$/.test(code)) return true;
  }
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection closed/i.test(
    e.message,
  );
}

/** The URL without its password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = "***";
    return u.toString();
  } catch {
    return "postgres://(unparsable URL)";
  }
}

interface PgQueryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: object[] }>;
}
interface PgPoolClient extends PgQueryable {
  release(destroy?: boolean | Error): void;
}
interface PgPool extends PgQueryable {
  connect(): Promise<PgPoolClient>;
  end(): Promise<void>;
  on(event: "error", fn: (e: Error) => void): void;
}

export interface PgClientOptions {
  /** Connections kept open (default 4). */
  max?: number;
  /** Give up connecting after this many ms (default 5000). */
  connectTimeoutMs?: number;
}

/** A client over a node-postgres pool; `pg` is imported here, on first use. */
export async function pgClient(url: string, opts: PgClientOptions = {}): Promise<SqlClient> {
  const label = redactUrl(url);
  const pg = (await import("pg")).default;
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 4,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
  }) as unknown as PgPool;
  // An idle connection that breaks emits on the pool; without a listener the process would exit.
  pool.on("error", () => {});
  const wrap = async <T>(p: () => Promise<T>): Promise<T> => {
    try {
      return await p();
    } catch (e) {
      if (isConnectionError(e))
        throw new StoreUnavailableError(label, e instanceof Error ? e.message : String(e), { cause: e });
      throw e;
    }
  };
  const runner = (c: PgQueryable): SqlRunner => ({
    query: <R extends object>(sql: string, params?: readonly unknown[]) =>
      wrap(async () => (await c.query(sql, params === undefined ? undefined : [...params])).rows as R[]),
    exec: (sql: string) =>
      wrap(async () => {
        await c.query(sql);
      }),
  });
  const direct = runner(pool);
  return {
    label,
    ...direct,
    transaction: async <T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> => {
      const conn = await wrap(() => pool.connect());
      const tx = runner(conn);
      let broken: unknown = undefined;
      try {
        await tx.exec("BEGIN");
        const out = await fn(tx);
        await tx.exec("COMMIT");
        return out;
      } catch (e) {
        broken = e;
        try {
          await conn.query("ROLLBACK");
        } catch {
          // The connection is gone; the server rolls back an unfinished transaction by itself.
        }
        throw e;
      } finally {
        conn.release(broken instanceof StoreUnavailableError ? broken : undefined);
      }
    },
    close: () => pool.end(),
  };
}
