// The store behaviour suite: the same tests for every implementation (see backends.ts).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Rng } from "../../src/engine/random.js";
import { bf16ToF32, f32ToBf16 } from "../../src/io/half.js";
import { searchHybrid } from "../../src/store/batch.js";
import type { DocumentRecord, PassageRecord, PassageStore, StoredPassage } from "../../src/store/types.js";
import type { Backend } from "./backends.js";

const P = (
  doc: string,
  i: number,
  title: string,
  text: string,
  meta?: StoredPassage["meta"],
): PassageRecord => ({
  passage: { id: `${doc}#${i}`, doc_id: doc, title, text, ...(meta ? { meta } : {}) },
});

/** Documents on distinct subjects; the full-text tests ask for each by words of its own. */
export const CORPUS: DocumentRecord[] = [
  {
    docId: "lighthouse",
    passages: [
      P("lighthouse", 0, "Lighthouses", "A lighthouse guides ships at night with a bright lamp and a lens."),
      P(
        "lighthouse",
        1,
        "Lighthouses",
        "Keepers once trimmed the wicks and wound the clockwork every few hours.",
      ),
    ],
  },
  {
    docId: "volcano",
    passages: [
      P("volcano", 0, "Volcanoes", "Lava flows from an erupting volcano down its slopes.", { split: "test" }),
      P("volcano", 1, "Volcanoes", "Ash clouds from eruptions can ground aircraft for days."),
    ],
  },
  {
    docId: "algeria",
    passages: [
      P("algeria", 0, "Algeria — Geography", "Mostly desert; the Sahara covers four fifths of the land."),
    ],
  },
  {
    docId: "tunisia",
    passages: [
      P(
        "tunisia",
        0,
        "Tunisia — Geography",
        "Its southern desert borders Algeria and Libya; the north is fertile.",
      ),
    ],
  },
  {
    docId: "bees",
    passages: [
      P("bees", 0, "Honey bees", "Worker bees dance to tell the hive where flowers with nectar are."),
    ],
  },
];

const ids = (hits: { id: string }[]) => hits.map((h) => h.id);

function unit(rng: Rng, dim: number): Float32Array {
  const v = new Float32Array(dim);
  let n = 0;
  for (let i = 0; i < dim; i++) {
    v[i] = rng.normal();
    n += v[i] * v[i];
  }
  for (let i = 0; i < dim; i++) v[i] /= Math.sqrt(n);
  return v;
}

const cosine = (a: Float32Array, b: Float32Array) => {
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return d / Math.sqrt(na * nb);
};

/** `n` one-passage documents with random embeddings of `dim` for embedder "e1". */
function randomDocs(rng: Rng, n: number, dim: number, prefix = "r"): DocumentRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    docId: `${prefix}${i}`,
    passages: [
      {
        passage: {
          id: `${prefix}${i}#0`,
          doc_id: `${prefix}${i}`,
          title: `Item ${i}`,
          text: `filler text number ${i}`,
        },
        embeddings: { e1: unit(rng, dim) },
      },
    ],
  }));
}

export function storeSuite(make: () => Promise<Backend>): void {
  let backend: Backend;
  const stores: PassageStore[] = [];
  const fresh = async (titleWeight?: number) => {
    const s = await backend.fresh(titleWeight);
    stores.push(s);
    return s;
  };
  before(async () => {
    backend = await make();
  });
  after(async () => {
    for (const s of stores) await s.close().catch(() => {});
    await backend.teardown();
  });

  test("store: batches add, replace and remove whole documents; reads see the result", async () => {
    const s = await fresh();
    const r = await s.upsertDocuments(CORPUS);
    assert.deepEqual(r, { documents: 5, passages: 7, removed: 0 });
    assert.equal(await s.count(), 7);
    const got = await s.get(["volcano#0", "nope", "lighthouse#1"]);
    assert.deepEqual(ids(got), ["volcano#0", "lighthouse#1"]);
    assert.deepEqual(got[0].meta, { split: "test" });
    assert.equal(got[1].text, CORPUS[0].passages[1].passage.text);
    // Replace the lighthouse document: one passage, new words; the old second passage goes.
    const r2 = await s.upsertDocuments([
      {
        docId: "lighthouse",
        passages: [P("lighthouse", 0, "Lighthouses", "Fresnel lenses focus the beam.")],
      },
    ]);
    assert.deepEqual(r2, { documents: 1, passages: 1, removed: 1 });
    assert.equal(await s.count(), 6);
    assert.deepEqual(ids(await s.get(["lighthouse#1"])), []);
    assert.equal((await s.get(["lighthouse#0"]))[0].text, "Fresnel lenses focus the beam.");
    assert.deepEqual(ids(await s.searchText("Fresnel", 3)), ["lighthouse#0"]);
    assert.deepEqual(await s.searchText("clockwork wicks", 3), []);
    // An empty passage list removes the document.
    assert.deepEqual(await s.upsertDocuments([{ docId: "bees", passages: [] }]), {
      documents: 1,
      passages: 0,
      removed: 1,
    });
    assert.equal(await s.count(), 5);
    assert.deepEqual(await s.searchText("nectar hive", 3), []);
  });

  test("store: full-text search puts the right passage first, and the title outweighs the text", async () => {
    const s = await fresh();
    await s.upsertDocuments(CORPUS);
    assert.equal(s.titleWeight, 8);
    const first = async (q: string) => (await s.searchText(q, 3))[0]?.id;
    assert.equal(await first("Which lamp guides ships at night?"), "lighthouse#0");
    assert.equal(await first("What do ash clouds ground?"), "volcano#1");
    assert.equal(await first("Why do worker bees dance?"), "bees#0");
    // "Algeria" is in the Algeria title and in the Tunisia text: the title wins.
    assert.equal(await first("Algeria"), "algeria#0");
    const hits = await s.searchText('volcano: "lava" (slopes)?', 5);
    assert.equal(hits[0].id, "volcano#0");
    for (let i = 1; i < hits.length; i++) assert.ok(hits[i - 1].score >= hits[i].score, "scores descend");
    assert.deepEqual(await s.searchText("?!:()", 5), []);
    await assert.rejects(s.searchText("lamp", 0), /k must be a positive integer/);
  });

  test("store: full-text ranking weighs a rare word of the question above a common one (IDF)", async () => {
    const s = await fresh();
    const note = (id: string, text: string): DocumentRecord => ({
      docId: id,
      passages: [P(id, 0, `Note ${id}`, text)],
    });
    // Ten passages share "common"; one (sorting last by id) has "rare". Without IDF both words weigh the
    // same and the tie would go to the first id.
    await s.upsertDocuments([
      ...Array.from({ length: 10 }, (_, i) => note(`c${i}`, "a common word is here")),
      note("zz", "a rare word is here"),
    ]);
    assert.equal((await s.searchText("common rare", 3))[0].id, "zz#0");
  });

  test("store: dense search equals a brute-force cosine ranking", async () => {
    const s = await fresh();
    const rng = new Rng(7);
    const docs = randomDocs(rng, 200, 16);
    await s.upsertDocuments(docs);
    assert.deepEqual(await s.embedders(), [{ id: "e1", dim: 16 }]);
    for (let q = 0; q < 5; q++) {
      const query = unit(rng, 16);
      const expected = docs
        .map((d) => ({ id: d.passages[0].passage.id, score: cosine(query, d.passages[0].embeddings!.e1) }))
        .sort((a, b) => b.score - a.score)
        .slice(0, 10);
      const hits = await s.searchDense("e1", query, 10);
      assert.deepEqual(ids(hits), ids(expected), `query ${q}`);
      hits.forEach((h, i) => assert.ok(Math.abs(h.score - expected[i].score) < 1e-4, `score ${h.score}`));
    }
    const back = await s.getEmbeddings(["r3#0", "r4#0", "none"], "e1");
    assert.deepEqual([...back.keys()].sort(), ["r3#0", "r4#0"]);
    assert.deepEqual(back.get("r3#0"), docs[3].passages[0].embeddings!.e1);
    await assert.rejects(
      s.searchDense("e1", new Float32Array(8).fill(1), 3),
      /has 8 values, embedder e1 has 16/,
    );
    await assert.rejects(s.searchDense("e9", unit(rng, 16), 3), /no embeddings of embedder e9/);
    // Another dimension for a known embedder is refused; a new embedder may have its own.
    await assert.rejects(s.upsertDocuments(randomDocs(rng, 1, 8, "x")), /e1 stores 16-dimensional/);
    // A replaced document's embedding is the new one.
    const moved = randomDocs(new Rng(99), 1, 16, "r");
    await s.upsertDocuments(moved);
    const top = await s.searchDense("e1", moved[0].passages[0].embeddings!.e1, 1);
    assert.equal(top[0].id, "r0#0");
    assert.ok(Math.abs(top[0].score - 1) < 1e-5);
  });

  test("store: hybrid search is reciprocal rank fusion of the text and dense lists", async () => {
    const s = await fresh();
    const rng = new Rng(3);
    const docs = CORPUS.map((d) => ({
      ...d,
      passages: d.passages.map((p) => ({ ...p, embeddings: { e1: unit(rng, 8) } })),
    }));
    await s.upsertDocuments(docs);
    const q = "desert Algeria lava";
    const vec = unit(rng, 8);
    const text = await s.searchText(q, 50);
    const dense = await s.searchDense("e1", vec, 50);
    assert.ok(text.length >= 3 && dense.length === 7);
    const expected = new Map<string, number>();
    for (const list of [text, dense])
      list.forEach((h, r) => expected.set(h.id, (expected.get(h.id) ?? 0) + 1 / (60 + r + 1)));
    const hybrid = await searchHybrid(s, q, { embedderId: "e1", vector: vec }, 4);
    assert.equal(hybrid.length, 4);
    const want = [...expected.entries()].sort((a, b) => b[1] - a[1]).slice(0, 4);
    hybrid.forEach((h, i) => {
      assert.ok(Math.abs(h.score - want[i][1]) < 1e-12, `${h.id}: ${h.score} vs ${want[i][1]}`);
      assert.equal(h.score, expected.get(h.id));
    });
  });

  test("store: chunk vectors round-trip exactly as F32 and bf16-rounded as BF16", async () => {
    const s = await fresh();
    const rng = new Rng(11);
    const data = Float32Array.from({ length: 3 * 5 }, () => rng.normal() * 3);
    const rec = (id: string): PassageRecord => ({
      ...P("cv", Number(id.split("#")[1]), "Vectors", `passage ${id}`),
      chunkVectors: [
        { encoderId: "enc-a", k: 16, dtype: "F32", rows: 3, cols: 5, data },
        { encoderId: "enc-a", k: 8, dtype: "BF16", rows: 3, cols: 5, data },
      ],
    });
    await s.upsertDocuments([{ docId: "cv", passages: [rec("cv#0"), rec("cv#1")] }]);
    const f32 = await s.getChunkVectors(["cv#0", "cv#1", "zz"], "enc-a", 16);
    assert.deepEqual([...f32.keys()].sort(), ["cv#0", "cv#1"]);
    assert.deepEqual(f32.get("cv#0"), {
      encoderId: "enc-a",
      k: 16,
      dtype: "F32",
      rows: 3,
      cols: 5,
      data,
      text: "passage cv#0",
    });
    const bf = (await s.getChunkVectors(["cv#1"], "enc-a", 8)).get("cv#1")!;
    assert.equal(bf.dtype, "BF16");
    assert.deepEqual(bf.data, bf16ToF32(f32ToBf16(data)));
    assert.notDeepEqual(bf.data, data);
    assert.equal((await s.getChunkVectors(["cv#0"], "enc-b", 16)).size, 0);
    // Replacing the document without vectors drops them.
    await s.upsertDocuments([{ docId: "cv", passages: [P("cv", 0, "Vectors", "no vectors now")] }]);
    assert.equal((await s.getChunkVectors(["cv#0"], "enc-a", 16)).size, 0);
  });

  test("store: attach adds vectors and embeddings to stored passages whose text is unchanged", async () => {
    const s = await fresh();
    await s.upsertDocuments(CORPUS);
    const rng = new Rng(12);
    const cv = (fill: number) => ({
      encoderId: "enc",
      k: 4,
      dtype: "F32" as const,
      rows: 2,
      cols: 3,
      data: new Float32Array(6).fill(fill),
    });
    const stored = (id: string) =>
      CORPUS.flatMap((d) => d.passages).find((p) => p.passage.id === id)!.passage;
    const rec = (id: string, fill: number, text = stored(id).text) => ({
      id,
      title: stored(id).title,
      text,
      chunkVectors: [cv(fill)],
      embeddings: { e1: unit(rng, 4) },
    });
    const r = await s.attach([
      rec("lighthouse#0", 1),
      rec("volcano#0", 2),
      rec("bees#0", 3, "text that is not stored"),
      { id: "missing#0", title: "x", text: "y", chunkVectors: [cv(4)] },
    ]);
    assert.deepEqual(r, { attached: 2, skipped: ["bees#0", "missing#0"] });
    const got = await s.getChunkVectors(["lighthouse#0", "volcano#0", "bees#0"], "enc", 4);
    assert.deepEqual([...got.keys()].sort(), ["lighthouse#0", "volcano#0"]);
    assert.equal(got.get("volcano#0")!.data[0], 2);
    assert.equal(got.get("volcano#0")!.text, stored("volcano#0").text);
    assert.deepEqual(
      (await s.embedders()).map((e) => e.id),
      ["e1"],
    );
    assert.equal((await s.searchDense("e1", unit(rng, 4), 10)).length, 2);
    // Attaching again replaces (one set of vectors per passage, encoder and k).
    await s.attach([rec("volcano#0", 5)]);
    const again = await s.getChunkVectors(["volcano#0"], "enc", 4);
    assert.equal(again.size, 1);
    assert.equal(again.get("volcano#0")!.data[0], 5);
    assert.equal((await s.searchDense("e1", unit(rng, 4), 10)).length, 2);
    // A replaced passage loses what was attached to its old text.
    await s.upsertDocuments([{ docId: "volcano", passages: [P("volcano", 0, "Volcanoes", "new text")] }]);
    assert.equal((await s.getChunkVectors(["volcano#0"], "enc", 4)).size, 0);
    assert.deepEqual(ids(await s.searchDense("e1", unit(rng, 4), 10)), ["lighthouse#0"]);
    await assert.rejects(s.attach([rec("lighthouse#0", 1), rec("lighthouse#0", 2)]), /appears twice/);
  });

  test("store: a batch that fails half-way leaves nothing behind", async () => {
    const s = await fresh();
    await s.upsertDocuments(CORPUS);
    const rng = new Rng(5);
    const big: DocumentRecord[] = randomDocs(rng, 700, 4, "big").map((d) => ({
      ...d,
      passages: d.passages.map((p) => ({
        ...p,
        chunkVectors: [
          {
            encoderId: "enc",
            k: 16,
            dtype: "F32" as const,
            rows: 1,
            cols: 4,
            data: new Float32Array(4).fill(1),
          },
        ],
      })),
    }));
    // Replace a stored document in the same batch: its old passages must survive the failure too.
    big.push({ docId: "volcano", passages: [P("volcano", 0, "Volcanoes", "rewritten")] });
    let calls = 0;
    await assert.rejects(
      s.upsertDocuments(big, {
        onProgress: (done, total) => {
          calls++;
          if (done < total) throw new Error(`injected failure after ${done} of ${total}`);
        },
      }),
      /injected failure after/,
    );
    assert.equal(calls, 1);
    assert.equal(await s.count(), 7);
    assert.deepEqual(await s.get(["big0#0", "big699#0"]), []);
    assert.equal((await s.get(["volcano#0"]))[0].text, CORPUS[1].passages[0].passage.text);
    assert.deepEqual(await s.searchText("filler", 5), []);
    assert.equal((await s.getChunkVectors(["big0#0"], "enc", 16)).size, 0);
    // A passage id owned by another document fails the batch.
    const clash = randomDocs(rng, 300, 4, "ok");
    clash.push({
      docId: "thief",
      passages: [P("algeria", 0, "x", "y")].map((p) => ({
        ...p,
        passage: { ...p.passage, doc_id: "thief" },
      })),
    });
    await assert.rejects(
      s.upsertDocuments(clash),
      /passage id algeria#0 is already stored under document algeria/,
    );
    assert.equal(await s.count(), 7);
    assert.deepEqual(await s.get(["ok0#0"]), []);
    // The store still takes a good batch afterwards, embeddings included.
    await s.upsertDocuments(randomDocs(rng, 3, 4, "after"));
    assert.equal(await s.count(), 10);
    assert.equal((await s.searchDense("e1", unit(rng, 4), 10)).length, 3);
  });

  test("store: malformed batches are refused before anything is written", async () => {
    const s = await fresh();
    const bad = (docs: unknown) => s.upsertDocuments(docs as DocumentRecord[]);
    await assert.rejects(
      bad([{ docId: "a", passages: [P("b", 0, "t", "x")] }]),
      /doc_id b is not the document's id/,
    );
    await assert.rejects(
      bad([{ docId: "a", passages: [P("a", 0, "t", "x"), P("a", 0, "t", "y")] }]),
      /duplicate id a#0/,
    );
    await assert.rejects(
      bad([
        { docId: "a", passages: [] },
        { docId: "a", passages: [] },
      ]),
      /appears twice/,
    );
    await assert.rejects(
      bad([{ docId: "a", passages: [P("a", 0, "t", "bad \u0000 byte")] }]),
      /NUL character/,
    );
    await assert.rejects(
      bad([
        {
          docId: "a",
          passages: [{ ...P("a", 0, "t", "x"), embeddings: { "bad id!": new Float32Array(2) } }],
        },
      ]),
      /embedder "bad id!"/,
    );
    await assert.rejects(
      bad([
        {
          docId: "a",
          passages: [
            {
              ...P("a", 0, "t", "x"),
              chunkVectors: [
                { encoderId: "e", k: 16, dtype: "F32", rows: 2, cols: 3, data: new Float32Array(5) },
              ],
            },
          ],
        },
      ]),
      /5 values for shape \[2, 3\]/,
    );
    assert.equal(await s.count(), 0);
  });
}
