// Writing a table's report: `--out NAME.json` (or a bare prefix NAME) gives NAME.json, NAME.md and, when
// the table has a plot, NAME.svg beside it. Each file is written atomically; the JSON goes last, so its
// presence means the table is finished (scripts/paper_tables.sh skips a table whose JSON exists). Also the
// row cache that lets a long table resume: each finished (row, domain) appended to NAME.partial.jsonl.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import type { RowCache } from "./ppl_table.js";

export interface ReportPaths {
  json: string;
  md: string;
  svg: string;
  partial: string;
}

/** The report files for `--out`: NAME.json → NAME.{json,md,svg}; a name without .json gets the suffixes. */
export function reportPaths(out: string): ReportPaths {
  const stem = out.endsWith(".json") ? out.slice(0, -".json".length) : out;
  if (stem === "" || stem.endsWith("/")) throw new Error(`--out: "${out}" names no file`);
  return { json: `${stem}.json`, md: `${stem}.md`, svg: `${stem}.svg`, partial: `${stem}.partial.jsonl` };
}

/** Writes the markdown and the SVG (when given), then the JSON. */
export async function writeReport(
  out: string,
  r: { json: unknown; md: string; svg?: string },
): Promise<string[]> {
  const p = reportPaths(out);
  mkdirSync(dirname(p.json), { recursive: true });
  const text = (path: string, what: string, body: string) =>
    writeFileAtomic(path, what, async (fh) => {
      await fh.writeFile(body, "utf8");
    });
  const written: string[] = [];
  await text(p.md, "markdown report", r.md);
  written.push(p.md);
  if (r.svg !== undefined) {
    await text(p.svg, "SVG plot", r.svg);
    written.push(p.svg);
  }
  await text(p.json, "JSON report", JSON.stringify(r.json, null, 1) + "\n");
  written.push(p.json);
  return written;
}

/** A markdown table. */
export function mdTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n") + "\n";
}

/** A number for a table cell ("-" for null / NaN). */
export function fmt(x: number | null | undefined, digits = 3): string {
  return x === null || x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(digits);
}

/**
 * Finished cells of a long table appended to a JSONL file as they finish ({key, value} per line), read
 * back on the next run with the same key: an interrupted table resumes where it stopped. A line cut short
 * by a crash, or one whose value `valid` rejects, is ignored.
 */
export class JsonlCache<T> {
  private readonly entries = new Map<string, T>();

  constructor(
    readonly path: string,
    valid: (v: unknown) => v is T,
  ) {
    mkdirSync(dirname(path), { recursive: true });
    if (!existsSync(path)) return;
    for (const line of readFileSync(path, "utf8").split("\n")) {
      if (line.trim() === "") continue;
      try {
        const e = JSON.parse(line) as { key?: unknown; value?: unknown };
        if (typeof e.key === "string" && valid(e.value)) this.entries.set(e.key, e.value);
      } catch {
        // the last line of a run that was killed mid-write
      }
    }
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): T | undefined {
    return this.entries.get(key);
  }

  put(key: string, value: T): void {
    this.entries.set(key, value);
    appendFileSync(this.path, JSON.stringify({ key, value }) + "\n");
  }
}

/**
 * Table 1 and 2's cache: per-(row, domain) log-perplexities per window, keyed by row, weights, windows and
 * o. (NaN is not JSON; a cell never holds one unless a window had no scored token.)
 */
export class JsonlRowCache extends JsonlCache<number[][]> implements RowCache {
  constructor(path: string) {
    super(path, (v): v is number[][] => Array.isArray(v) && v.every((w) => Array.isArray(w)));
  }
}
