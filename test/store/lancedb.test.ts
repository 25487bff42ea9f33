// The store suite on the embedded LanceDB store.
import "../helpers.js";
import { lanceBackend } from "./backends.js";
import { storeSuite } from "./suite.js";

storeSuite(async () => lanceBackend());
