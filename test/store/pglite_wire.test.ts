// The store suite on Postgres through the wire protocol: node-postgres talking to a pglite-socket server,
// the same code path as a real Postgres server.
import "../helpers.js";
import { pgliteWireBackend } from "./backends.js";
import { storeSuite } from "./suite.js";

storeSuite(pgliteWireBackend);
