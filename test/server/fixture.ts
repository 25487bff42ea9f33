// The fixture the server, OpenAI and LangChain tests share: a small random REFRAG model (k = 8, a window of
// 256 positions), its pipeline, and two titled passages in a real passage index under a temporary folder.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tinyRefrag, tokenizer } from "../tiny_refrag.js";
import { RefragPipeline } from "../../src/infer/pipeline.js";
import { PassageIndex } from "../../src/retrieval/index.js";

export const passages = [
  {
    id: "a#0",
    doc_id: "a",
    title: "Lighthouses",
    text: "A lighthouse guides ships at night with a bright lamp.",
  },
  {
    id: "b#0",
    doc_id: "b",
    title: "Volcanoes",
    text: "Lava flows from an erupting volcano down its slopes.",
  },
];

/** The model, its pipeline and the two passages indexed in a fresh folder; `dispose` closes and removes it. */
export async function tinyServerFixture(prefix: string) {
  const model = tinyRefrag(8, 256, 11);
  const pipeline = new RefragPipeline(model, tokenizer);
  const root = mkdtempSync(join(tmpdir(), prefix));
  const index = await PassageIndex.build(join(root, "index"), passages);
  const dispose = () => {
    index.close();
    rmSync(root, { recursive: true, force: true });
  };
  return { model, pipeline, index, dispose };
}
