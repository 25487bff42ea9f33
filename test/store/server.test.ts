// The store suite on a real Postgres server with pgvector, when DATABASE_URL names one
// (e.g. postgres://user:pass@localhost:5432/db); skipped otherwise.
import { test } from "node:test";
import "../helpers.js";
import { serverBackend } from "./backends.js";
import { storeSuite } from "./suite.js";

const url = process.env.DATABASE_URL;
if (url !== undefined && url !== "") storeSuite(async () => serverBackend(url));
else test("store suite on a Postgres server", { skip: "DATABASE_URL is not set" }, () => {});
