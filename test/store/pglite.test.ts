// The store suite on Postgres: PGlite in-process (Postgres compiled to WebAssembly, with pgvector).
import "../helpers.js";
import { pgliteBackend } from "./backends.js";
import { storeSuite } from "./suite.js";

storeSuite(pgliteBackend);
