// Answer text as tokens arrive: each new token's text, with an unfinished UTF-8 character and a possible
// stop-string prefix held back until resolved, and the cut at the first stop string. One rule for the
// single-request loop (generate.ts) and the batched engine (batch.ts).

export interface TextDecoder {
  decode(ids: readonly number[]): string;
}

/** Longest suffix of text that is a prefix of some stop string (held back until resolved). */
function pendingStopPrefix(text: string, stops: string[]): number {
  let hold = 0;
  for (const s of stops)
    for (let n = Math.min(s.length - 1, text.length); n > hold; n--)
      if (text.endsWith(s.slice(0, n))) {
        hold = n;
        break;
      }
  return hold;
}

export class AnswerText {
  readonly ids: number[] = [];
  private emitted = 0; // characters of the decoded answer already handed out
  private readonly stops: string[];

  constructor(
    private readonly tokenizer: TextDecoder | null,
    stops: readonly string[] = [],
  ) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  /** Adds a token: the new text to emit, and whether a stop string ended the answer. */
  push(id: number): { text: string; stopped: boolean } {
    this.ids.push(id);
    if (this.tokenizer === null) return { text: "", stopped: false };
    const full = this.tokenizer.decode(this.ids);
    const hit = this.stops
      .map((x) => full.indexOf(x, Math.max(0, this.emitted - x.length)))
      .filter((p) => p >= 0);
    let text: string;
    let stopped = false;
    if (hit.length > 0) {
      text = full.slice(this.emitted, Math.min(...hit));
      stopped = true;
    } else {
      // Hold back an unfinished UTF-8 character (U+FFFD at the end) and a possible stop-string prefix.
      let end = full.length;
      if (full.endsWith("\ufffd")) end--;
      end -= pendingStopPrefix(full.slice(0, end), this.stops);
      text = full.slice(this.emitted, Math.max(this.emitted, end));
    }
    this.emitted += text.length;
    return { text, stopped };
  }

  /** Text still held back when the answer ends (up to the first stop string). */
  flush(): string {
    if (this.tokenizer === null) return "";
    const full = this.tokenizer.decode(this.ids);
    let end = full.length;
    for (const x of this.stops) {
      const p = full.indexOf(x);
      if (p >= 0) end = Math.min(end, p);
    }
    if (end <= this.emitted) return "";
    const text = full.slice(this.emitted, end);
    this.emitted = end;
    return text;
  }
}
