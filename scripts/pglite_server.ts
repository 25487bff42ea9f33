// A Postgres server for trying the shared store without installing Postgres: PGlite (Postgres compiled to
// WebAssembly, with pgvector) behind pglite-socket, which speaks the wire protocol, so `refrag` connects to
// it with `--store postgres://…` like to any server. One process holds the database; stop it with Ctrl-C.
// The development dependencies (@electric-sql/pglite*) must be installed.
//   node dist/scripts/pglite_server.js --data runs/pgdata [--port 5433]
//   -> prints postgres://postgres@127.0.0.1:5433/postgres
import { mkdirSync } from "node:fs";
import { parseArgs } from "node:util";
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

const { values } = parseArgs({
  options: {
    data: { type: "string" },
    port: { type: "string", default: "5433" },
    host: { type: "string", default: "127.0.0.1" },
  },
});
if (values.data === undefined) throw new Error("give --data <dir> (the database folder, created if missing)");
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: bad port ${values.port}`);
mkdirSync(values.data, { recursive: true });
const db = await PGlite.create({ dataDir: values.data, extensions: { vector } });
await db.exec("CREATE EXTENSION IF NOT EXISTS vector");
const server = new PGLiteSocketServer({ db, port, host: values.host, maxConnections: 64 });
await server.start();
console.log(`postgres://postgres@${server.getServerConn()}/postgres`);
const stop = () => {
  void server
    .stop()
    .then(() => db.close())
    .finally(() => process.exit(0));
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
