// Markdown and SVG for a perplexity table (ppl_table.ts): per context length s, a table of log-perplexity
// with a column per (domain, o), one of normalised gain per reference pair, and the sampling notes; the
// plot is a dot chart per domain (and s) with one line per row and one marker colour per o.
import { renderDotChart } from "./plot.js";
import type { PerplexityTableResult, TableCell } from "./ppl_table.js";
import { fmt, mdTable } from "./report.js";

const unique = <T>(xs: readonly T[]): T[] => [...new Set(xs)];

function cellAt(
  r: PerplexityTableResult,
  row: string,
  domain: string,
  s: number,
  o: number,
): TableCell | undefined {
  return r.cells.find((c) => c.row === row && c.domain === domain && c.requestedS === s && c.o === o);
}

/** The report's markdown: a title line, then per requested s the log-perplexity and gain tables. */
export function perplexityMarkdown(r: PerplexityTableResult, title: string, preamble: string[] = []): string {
  const out: string[] = [`## ${title}`, "", ...preamble];
  if (preamble.length > 0) out.push("");
  const domains = unique(r.domains.map((d) => d.domain));
  for (const s of unique(r.domains.map((d) => d.requestedS))) {
    const header = [
      "row",
      ...domains.flatMap((d) =>
        r.os.map((o, i) => (i === 0 ? `${d.replace(/ \(.*\)$/, "")} P${o}` : `P${o}`)),
      ),
    ];
    const table = (value: (c: TableCell) => number | null, digits: number) =>
      mdTable(
        header,
        r.rows.map((row) => [
          row.label,
          ...domains.flatMap((d) =>
            r.os.map((o) => {
              const c = cellAt(r, row.id, d, s, o);
              return c === undefined ? "" : fmt(value(c), digits);
            }),
          ),
        ]),
      );
    const lowered = r.domains.filter((d) => d.requestedS === s && d.s !== s);
    out.push(
      `### Log-perplexity (nats per token) of the first o continuation tokens, s = ${s}${lowered.length > 0 ? ` (lowered for ${lowered.map((d) => `${d.domain}: ${d.s}`).join(", ")})` : ""}`,
      "",
      table((c) => c.logPpl, 3),
    );
    for (const g of r.gainReferences)
      out.push(
        `### Normalised ${g.name}: (no − x) / (no − full), rows ${g.none} and ${g.full}, s = ${s}`,
        "",
        table((c) => c.gains[g.name] ?? null, 2),
      );
  }
  out.push("### Windows", "");
  for (const d of r.domains) out.push(`- ${d.domain}, s = ${d.s}: ${d.notes.join("; ")}`);
  const beyond = r.rows.filter((row) => row.beyondWindow === true);
  if (beyond.length > 0)
    out.push(
      "",
      `Read beyond the decoder's max_position_embeddings on purpose (--beyond-window): ${beyond.map((b) => b.label).join(", ")}.`,
    );
  return out.join("\n") + "\n";
}

/** One dot-chart panel per (domain, s): log-perplexity per row, a marker colour per o. */
export function perplexitySvg(r: PerplexityTableResult, title: string): string {
  const sets = r.domains.map((d) => ({ domain: d.domain, s: d.requestedS }));
  const manyS = unique(sets.map((x) => x.s)).length > 1;
  return renderDotChart(
    sets.map(({ domain, s }) => ({
      title: manyS ? `${domain}, s = ${s}` : domain,
      xLabel: "log-perplexity (nats / token)",
      categories: r.rows.map((row) => row.label),
      series: r.os.map((o) => ({
        name: `P${o}`,
        values: r.rows.map((row) => cellAt(r, row.id, domain, s, o)?.logPpl ?? null),
      })),
    })),
    { title, columns: 2 },
  );
}
