// Drives the demo page in headless Chromium (Debian's `chromium` through playwright-core): a server with a
// random shipped-shape model and a small passage index (paragraphs of the README), one question with 3
// passages and random expansion, then checks that the answer streamed in, that compressed and expanded
// chunks are shown per numbered passage, and that passage numbers in an answer become links; saves a
// screenshot for the README. Exits non-zero when a check fails.
//   npm run page:screenshot [-- --out docs/page.png --chromium /usr/bin/chromium]
// With --url it drives a page that is already served instead (`npx refrag demo`, the shipped model), with
// the page's own defaults for passages and selection, and --expect checks the answer:
//   node dist/scripts/page_screenshot.js --url http://127.0.0.1:8080 --question "What is the capital of
//     Algeria?" --expect Algiers --out docs/demo.png
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import { readmeParagraphs } from "../bench/common.js";
import { setNumThreads } from "../src/engine/native.js";
import { Rng } from "../src/engine/random.js";
import { RefragPipeline } from "../src/infer/pipeline.js";
import { refragConfigFor, SHAPES } from "../src/models/presets.js";
import { RefragModel } from "../src/models/refrag.js";
import { vectorCacheFor } from "../src/rag/vectors.js";
import { PassageIndex } from "../src/retrieval/index.js";
import { buildServer } from "../src/server/app.js";
import { Tokenizer } from "../src/tokenizer/index.js";
import { defaultTokenizerPath } from "../src/tokenizer/pipeline.js";

const { values } = parseArgs({
  options: {
    out: { type: "string", default: "docs/page.png" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
    url: { type: "string" },
    question: { type: "string", default: "How is the decoder trained before the encoder is attached?" },
    expect: { type: "string" },
  },
});
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`page check failed: ${what}`);
  console.log(`ok  ${what}`);
}

/** A server of its own: a random shipped-shape model over paragraphs of the README. */
async function ownServer(): Promise<{ url: string; close: () => Promise<void> }> {
  setNumThreads(1);
  const tokenizer = Tokenizer.fromFile(defaultTokenizerPath());
  const model = new RefragModel(
    refragConfigFor({ ...SHAPES.shipped, vocab: tokenizer.vocabSize }, 16, 2048),
    new Rng(1),
  );
  const docs = readmeParagraphs(200, 900).map((text, i) => ({
    id: `readme#${i}`,
    doc_id: "readme",
    title: "README",
    text,
  }));
  const dir = mkdtempSync(join(tmpdir(), "refrag-page-"));
  const index = await PassageIndex.build(join(dir, "index"), docs);
  const pipeline = new RefragPipeline(model, tokenizer, vectorCacheFor(model, null));
  const app = buildServer({ pipeline, index, modelName: "shipped shape, random weights" });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  return {
    url,
    close: async () => {
      await app.close();
      index.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const served = values.url === undefined ? await ownServer() : { url: values.url, close: async () => {} };
const url = served.url;
const browser = await chromium.launch({ executablePath: values.chromium, headless: true, args: FLAGS });
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  await page.goto(url);
  // Browser-side code as strings: this project compiles without the DOM types.
  await page.evaluate(
    "window.seen = []; const box = document.getElementById('answer'); new MutationObserver(() => window.seen.push(box.textContent)).observe(box, { childList: true, subtree: true, characterData: true })",
  );
  await page.fill("#question", values.question);
  if (values.url === undefined) {
    await page.fill("#k", "3");
    await page.selectOption("#mode", "random");
    await page.fill("#fraction", "0.3");
    await page.fill("#max", "24");
  }
  const k = Number(await page.inputValue("#k"));
  const fraction = Number(await page.inputValue("#fraction"));
  await page.click("#go");
  await page.waitForFunction(
    "document.getElementById('stats').textContent.startsWith('time to first token')",
    null,
    {
      timeout: 120_000,
    },
  );
  const answer = (await page.locator("#turns .turn div").nth(1).textContent()) ?? "";
  check(answer.length > 0, `the answer is shown under its question (${answer.length} characters)`);
  // Streamed: the box showed part of the answer before all of it. (Not a count of updates: one network read
  // can carry several token events, and the page then redraws once for them.)
  const seen = ((await page.evaluate("window.seen")) as string[]).map((t) => t.trim());
  const partial = seen.filter(
    (t) => t !== "" && t.length < answer.trim().length && answer.trim().startsWith(t),
  );
  check(
    partial.length > 0,
    `the answer streamed in (${seen.length} updates, ${partial.length} of them partial)`,
  );
  if (values.expect !== undefined)
    check(answer.includes(values.expect), `the answer "${answer.trim()}" contains "${values.expect}"`);
  check((await page.locator("#passages li").count()) === k, `${k} passages, as set in the panel`);
  const numbers = await page.locator("#passages .num").allTextContents();
  const want = Array.from({ length: k }, (_, i) => i + 1).join(",");
  check(numbers.join(",") === want, `passages are numbered (${numbers.join(",")})`);
  const compressed = await page.locator("#passages .chunk.compressed").count();
  const expanded = await page.locator("#passages .chunk.expanded").count();
  check(
    compressed > 0 && expanded > 0,
    `compressed (${compressed}) and expanded (${expanded}) chunks are shown`,
  );
  const ratio = expanded / (compressed + expanded);
  check(
    Math.abs(ratio - fraction) < 0.1,
    `the expansion fraction is the panel's ${fraction} (${ratio.toFixed(2)})`,
  );
  const stats = (await page.locator("#stats").textContent()) ?? "";
  check(/positions instead of \d+/.test(stats), `the stats say what compression saved: "${stats}"`);
  const linked = (await page.evaluate("window.linkPassages('see [2] and passage 3, not [7]', 3)")) as string;
  check(
    linked.includes('<a href="#passage-2">[2]</a>') &&
      linked.includes('<a href="#passage-3">passage 3</a>') &&
      !linked.includes("#passage-7"),
    "passage numbers in an answer link to the passages",
  );
  await page.screenshot({ path: values.out, fullPage: true });
  console.log(`wrote ${values.out}`);
} finally {
  await browser.close();
  await served.close();
}
