// Tables 1 and 2 on tiny random models: every row's value equals a forward pass built by hand on the
// declared windows (so every row reads the same windows), P4 is the first 4 tokens of the P8 continuation
// and equals a pass that never saw the rest, selection rows expand p = fraction(rate) with the shared
// per-window seed, gains are (no − x)/(no − full), and the beyond-window flag frees only full context.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../helpers.js";
import { crossEntropy } from "../../src/engine/ops.js";
import { Rng } from "../../src/engine/random.js";
import { noGrad } from "../../src/engine/tensor.js";
import { fractionForRate } from "../../src/eval/metrics.js";
import { continuationNll } from "../../src/eval/perplexity.js";
import { perplexityMarkdown, perplexitySvg } from "../../src/eval/ppl_report.js";
import {
  perplexityRows,
  planRows,
  windowSeed,
  type DomainWindows,
  type RowCache,
  type TableModel,
} from "../../src/eval/ppl_table.js";
import { tableWindows, type DocTokens } from "../../src/eval/windows.js";
import { lmSegments } from "../../src/infer/prompt.js";
import { selectChunks } from "../../src/infer/selection.js";
import { LlamaForCausalLM } from "../../src/models/llama.js";
import { chunkTokens, type RefragModel } from "../../src/models/refrag.js";
import { tinyRefrag } from "../tiny_refrag.js";

const near = (a: number, b: number, what: string, tol = 1e-5) =>
  assert.ok(Math.abs(a - b) < tol, `${what}: ${a} vs ${b}`);

function randomWindows(domain: string, n: number, s: number, o: number, seed: number): DomainWindows {
  const rng = new Rng(seed);
  const tok = () => 8 + rng.int(500);
  return {
    domain,
    s,
    requestedS: s,
    notes: [],
    windows: Array.from({ length: n }, (_, i) => ({
      doc: `${domain}-doc${i}`,
      cut: 100 + i,
      context: Array.from({ length: s }, tok),
      continuation: Array.from({ length: o }, tok),
    })),
  };
}

/** Mean NLL of cont[0..m) after <bos> + ctx, from one plain forward pass over exactly those tokens. */
function direct(
  decoder: LlamaForCausalLM,
  ctx: ArrayLike<number>,
  cont: ArrayLike<number>,
  m: number,
): number {
  const bos = decoder.config.bos_token_id!;
  const ids = Int32Array.from([bos, ...Array.from(ctx), ...Array.from(cont).slice(0, m - 1)]);
  const targets = new Int32Array(ids.length).fill(-100);
  for (let t = 0; t < m; t++) targets[ids.length - m + t] = cont[t];
  return noGrad(() => crossEntropy(decoder.forward([{ ids }]).logits, targets).item());
}

test("Table 1 rows: each equals a hand-built pass on the same windows; P4 is the head of P8; gains", () => {
  const r4 = tinyRefrag(4, 256, 1, 1);
  const r2 = tinyRefrag(2, 256, 2, 1);
  const llama = new LlamaForCausalLM(r4.config.decoder, new Rng(3)); // a plain decoder, other weights
  const models: TableModel[] = [
    { name: "llama", model: llama },
    { name: "r4", model: r4 },
    { name: "r2", model: r2 },
  ];
  const rate = 2;
  const { rows, gains } = planRows(models, {
    baseline: "llama",
    last: [8, 16],
    compressed: ["r4", "r2"],
    expand: { model: "r4", rate, modes: ["random", "perplexity-desc", "perplexity-asc"] },
    rawFrom: "r4",
  });
  assert.deepEqual(
    rows.map((r) => r.id),
    [
      "llama/none",
      "llama/full",
      "llama/last8",
      "llama/last16",
      "r4/compressed",
      "r2/compressed",
      "r4/random@2",
      "r4/perplexity-desc@2",
      "r4/perplexity-asc@2",
      "r4/none",
      "r4/full",
      "r4/last8",
      "r4/last16",
    ],
  );
  assert.deepEqual(
    gains.map((g) => [g.name, g.none, g.full]),
    [
      ["gain", "llama/none", "llama/full"],
      ["gain vs r4's decoder", "r4/none", "r4/full"],
    ],
  );
  const domains = [randomWindows("a", 2, 32, 8, 10), randomWindows("b", 3, 32, 8, 11)];
  const seed = 5;
  const res = perplexityRows(models, rows, domains, [4, 8], { gains, seed });
  const cell = (row: string, domain: string, o: number) =>
    res.cells.find((c) => c.row === row && c.domain === domain && c.o === o)!;
  const p = fractionForRate(4, rate);
  near(p, 1 / 3, "p at k 4, rate 2");

  domains.forEach((d, di) =>
    d.windows.forEach((w, wi) => {
      const got = (row: string, o: number) => cell(row, d.domain, o).perWindow[wi];
      const at = `${d.domain} window ${wi}`;
      // Raw rows: a plain forward over <bos> + (part of) the context + the continuation.
      near(got("llama/full", 8), direct(llama, w.context, w.continuation, 8), `${at} llama full P8`);
      near(got("llama/full", 4), direct(llama, w.context, w.continuation, 4), `${at} llama full P4`);
      near(got("llama/none", 8), direct(llama, [], w.continuation, 8), `${at} llama none`);
      near(
        got("llama/last8", 8),
        direct(llama, Array.from(w.context).slice(-8), w.continuation, 8),
        `${at} last8`,
      );
      near(got("r4/full", 8), direct(r4.decoder, w.context, w.continuation, 8), `${at} r4's decoder full`);
      near(
        got("r4/last16", 4),
        direct(r4.decoder, Array.from(w.context).slice(-16), w.continuation, 4),
        `${at} r4 last16 P4`,
      );
      // Compressed rows: <bos>, one projected vector per chunk, the continuation.
      for (const [name, m] of [
        ["r4", r4],
        ["r2", r2],
      ] as [string, RefragModel][]) {
        const chunks = chunkTokens(w.context, m.chunkSize);
        const segs = noGrad(() => lmSegments(m, { chunks, projected: m.project(m.encodeChunks(chunks)) }));
        near(
          got(`${name}/compressed`, 8),
          continuationNll(m, segs, w.continuation),
          `${at} ${name} compressed`,
        );
        near(
          got(`${name}/compressed`, 4),
          continuationNll(m, segs, Array.from(w.continuation).slice(0, 4)),
          `${at} ${name} compressed P4 = a pass that never saw tokens 5..8`,
        );
      }
      // Selection rows: the same expansion count per window for every mode (one seed per window).
      const chunks = chunkTokens(w.context, 4);
      const vectors = noGrad(() => r4.encodeChunks(chunks));
      const bos = Int32Array.of(r4.config.decoder.bos_token_id!);
      const counts = new Set<number>();
      for (const mode of ["random", "perplexity-desc", "perplexity-asc"] as const) {
        const expand = selectChunks(
          r4,
          { mode, fraction: p, seed: windowSeed(seed, di, wi) },
          {
            before: bos,
            chunks,
            vectors,
          },
        );
        counts.add(expand.filter(Boolean).length);
        const segs = noGrad(() => lmSegments(r4, { chunks, projected: r4.project(vectors), expand }));
        near(got(`r4/${mode}@2`, 8), continuationNll(r4, segs, w.continuation), `${at} ${mode}`);
      }
      assert.equal(counts.size, 1, `${at}: every selection row expands as many chunks`);
    }),
  );
  // The table's value is the mean over the domain's windows; gains by hand.
  const b = (row: string) => cell(row, "b", 8);
  near(b("llama/full").logPpl, b("llama/full").perWindow.reduce((x, y) => x + y) / 3, "mean over windows");
  const no = b("llama/none").logPpl;
  const full = b("llama/full").logPpl;
  near(b("llama/none").gains.gain!, 0, "gain of no context");
  near(b("llama/full").gains.gain!, 1, "gain of full context");
  near(b("r2/compressed").gains.gain!, (no - b("r2/compressed").logPpl) / (no - full), "gain by hand");
  const ownNo = b("r4/none").logPpl;
  const ownFull = b("r4/full").logPpl;
  near(
    b("r4/compressed").gains["gain vs r4's decoder"]!,
    (ownNo - b("r4/compressed").logPpl) / (ownNo - ownFull),
    "gain against the model's own decoder",
  );
  // Positions per row, and the report names every row.
  const pos = (id: string) => res.rows.find((r) => r.id === id)!.positions["32"];
  assert.deepEqual(
    [pos("llama/none"), pos("llama/full"), pos("llama/last8"), pos("r4/compressed"), pos("r2/compressed")],
    [1, 33, 9, 9, 17],
  );
  assert.equal(pos("r4/random@2"), 1 + 8 + 3 * 3, "at most ⌈8/3⌉ = 3 chunks raw, 3 more positions each");
  const md = perplexityMarkdown(res, "T");
  for (const r of rows) assert.ok(md.includes(`| ${r.label} |`), r.label);
  assert.ok(md.includes("a P4 | P8 | b P4 | P8"), "one column per domain and o");
  const svg = perplexitySvg(res, "T");
  assert.ok(svg.startsWith("<svg") && svg.includes("r4 + random (rate 2"), "the plot names the rows");
});

test("Table 2: full context past max_position_embeddings only with the flag; compressed rows still checked", () => {
  const r4 = tinyRefrag(4, 64, 7);
  const models: TableModel[] = [{ name: "r4", model: r4 }];
  const domains = [randomWindows("a", 2, 96, 4, 12)];
  const plain = planRows(models, { compressed: ["r4"], rawFrom: "r4", baselineReads: ["none", "full"] });
  assert.throws(
    () => perplexityRows(models, plain.rows, domains, [4]),
    /row "full context \(r4's decoder\)" reads 100 positions \(s = 96, o = 4\), beyond r4's max_position_embeddings 64.*--beyond-window/,
  );
  const beyond = planRows(models, {
    compressed: ["r4"],
    rawFrom: "r4",
    baselineReads: ["none", "full"],
    beyondWindow: true,
  });
  assert.deepEqual(
    beyond.rows.filter((r) => r.beyondWindow === true).map((r) => r.id),
    ["r4/full"],
    "only the full-context row",
  );
  const res = perplexityRows(models, beyond.rows, domains, [4]);
  const full = res.cells.find((c) => c.row === "r4/full")!;
  domains[0].windows.forEach((w, i) =>
    near(
      full.perWindow[i],
      direct(r4.decoder, w.context, w.continuation, 4),
      `window ${i} read past the window`,
    ),
  );
  assert.ok(
    perplexityMarkdown(res, "T2").includes("beyond the decoder's max_position_embeddings on purpose"),
  );
  // A compressed read that does not fit is refused even with the flag: 400 tokens are 100 chunks.
  assert.throws(
    () => perplexityRows(models, beyond.rows, [randomWindows("a", 1, 400, 4, 13)], [4]),
    /row "r4" reads 104 positions \(s = 400, o = 4, k = 4\)/,
  );
});

test("a row cache answers instead of computing; windows are cut the same way every time", () => {
  const r4 = tinyRefrag(4, 256, 8);
  const models: TableModel[] = [{ name: "r4", model: r4, fingerprint: "w1" }];
  const { rows } = planRows(models, { compressed: ["r4"] });
  const domains = [randomWindows("a", 2, 16, 4, 14)];
  const store = new Map<string, number[][]>();
  const cache: RowCache = { get: (k) => store.get(k), put: (k, v) => void store.set(k, v) };
  const first = perplexityRows(models, rows, domains, [2, 4], { cache });
  assert.equal(store.size, 1);
  const [key] = store.keys();
  store.set(key, [
    [9, 10],
    [11, 12],
  ]);
  const again = perplexityRows(models, rows, domains, [2, 4], { cache });
  assert.deepEqual(
    again.cells.map((c) => c.logPpl),
    [10, 11],
    "the cached per-window values, not a recomputation",
  );
  const other = perplexityRows([{ ...models[0], fingerprint: "w2" }], rows, domains, [2, 4], { cache });
  assert.deepEqual(
    other.cells.map((c) => c.logPpl),
    first.cells.map((c) => c.logPpl),
    "other weights: recomputed",
  );

  // Documents too short for s + o: s is lowered (multiples of 256) to what two documents reach, with a note.
  const rng = new Rng(15);
  const doc = (id: string, n: number): DocTokens => ({
    id,
    tokens: Array.from({ length: n }, () => 8 + rng.int(100)),
    boundaries: [],
  });
  const docs = new Map([
    ["long", [doc("l1", 3000), doc("l2", 2500)]],
    ["short", [doc("s1", 2200), doc("s2", 1400), doc("s3", 900)]],
  ]);
  const opts = { length: 4096, s: [2048], o: 64, perDocument: 2, maxPerDomain: 3, seed: 1 };
  const ws = tableWindows(docs, opts);
  assert.deepEqual(JSON.stringify(tableWindows(docs, opts)), JSON.stringify(ws), "deterministic");
  const [long, short] = ws;
  assert.equal(long.s, 2048);
  assert.equal(long.windows.length, 3, "capped per domain");
  assert.deepEqual(
    long.windows.map((w) => w.doc),
    ["l1", "l2", "l1"],
    "round-robin over the documents",
  );
  assert.equal(short.s, 1280, "(1400 − 64) rounded down to 256s");
  assert.match(short.notes.join(" "), /only 1 of 3 documents reach s \+ o = 2112 tokens; s lowered to 1280/);
  for (const d of ws)
    for (const w of d.windows) {
      const src = [...docs.values()].flat().find((x) => x.id === w.doc)!;
      assert.deepEqual(w.context, src.tokens.slice(w.cut - d.s, w.cut));
      assert.deepEqual(w.continuation, src.tokens.slice(w.cut, w.cut + 64));
    }
});
