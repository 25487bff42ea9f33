// Encoding speed: our byte-level BPE against @huggingface/tokenizers and the bare pre-tokenisers, on the
// same texts in the same run (the machine is shared, so ratios mean more than absolute numbers).
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { gpt2Regex } from "./bytelevel.js";
import { gpt2WordEnd } from "./pretokenize.js";
import { Tokenizer } from "./tokenizer.js";

export interface SpeedRow {
  name: string;
  /** Median over repeats of characters per second. */
  charsPerSecond: number;
  /** Every repeat, for the spread. */
  runs: number[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Time each encoder over all texts `repeats` times; each repeat starts from a fresh tokenizer (cold cache). */
export function benchEncode(
  json: object,
  texts: readonly string[],
  repeats: number,
  withHf: boolean,
): SpeedRow[] {
  const chars = texts.reduce((a, t) => a + t.length, 0);
  const cases: [string, () => () => number][] = [
    [
      "gpt2 regex only (baseline)",
      () => () => {
        const re = gpt2Regex();
        let n = 0;
        for (const t of texts) {
          re.lastIndex = 0;
          for (let m = re.exec(t); m !== null; m = re.exec(t)) n++;
        }
        return n;
      },
    ],
    [
      "our pre-tokeniser only",
      () => () => {
        let n = 0;
        for (const t of texts) for (let i = 0; i < t.length; n++) i = gpt2WordEnd(t, i, t.length);
        return n;
      },
    ],
    [
      "refrag Tokenizer.encode",
      () => {
        const tok = Tokenizer.fromJSON(json);
        return () => texts.reduce((a, t) => a + tok.encode(t).length, 0);
      },
    ],
  ];
  if (withHf) {
    cases.push([
      "@huggingface/tokenizers encode",
      () => {
        const hf = new HfTokenizer(json, {});
        return () => texts.reduce((a, t) => a + hf.encode(t, { add_special_tokens: false }).ids.length, 0);
      },
    ]);
  }
  const runs = cases.map(() => [] as number[]);
  // Interleave the cases so background load hits them alike.
  for (let r = 0; r < repeats; r++) {
    cases.forEach(([, make], i) => {
      const run = make();
      const t0 = performance.now();
      run();
      runs[i].push(chars / ((performance.now() - t0) / 1000));
    });
  }
  return cases.map(([name], i) => ({ name, charsPerSecond: median(runs[i]), runs: runs[i] }));
}
