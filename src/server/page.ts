// The demo page: one self-contained HTML document (no build step, no external assets). It streams the
// answer from POST /v1/answer and shows what REFRAG did: every passage with its number and its chunks,
// each read as one vector (compressed) or as raw tokens (expanded), passage numbers in the answer linked to
// the passages, and what compression saved. A panel sets the passages, selection mode and fraction.
import { DEFAULT_SELECTION, type SelectionMode } from "../infer/selection.js";

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

const MODE_OPTIONS: [SelectionMode, string][] = [
  ["query", "query (the question's words)"],
  ["none", "none (all compressed)"],
  ["policy", "policy"],
  ["perplexity-desc", "perplexity (high first)"],
  ["random", "random"],
  ["all", "all (full context)"],
];

export function demoPage(modelName: string, hasIndex: boolean): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>refrag · ${escapeHtml(modelName)}</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1d1d1f; }
  h1 { font-size: 1.3rem; margin-bottom: .2rem; }
  .sub { color: #666; margin-top: 0; }
  form { display: grid; gap: .6rem; margin: 1rem 0; }
  textarea, input, select, button { font: inherit; padding: .4rem .5rem; }
  textarea { min-height: 3.5rem; }
  .row { display: flex; gap: .8rem; flex-wrap: wrap; align-items: center; }
  button { background: #1d4ed8; color: white; border: 0; border-radius: 4px; padding: .5rem 1.2rem; cursor: pointer; }
  button:disabled { background: #999; }
  #turns .turn { color: #555; margin-bottom: .5rem; white-space: pre-wrap; }
  #turns .q { font-weight: 600; }
  #reset { background: #6b7280; }
  #answer:empty { display: none; }
  #answer { white-space: pre-wrap; border-left: 3px solid #1d4ed8; padding: .5rem .8rem; min-height: 1.5rem; background: #f5f7ff; }
  #stats { color: #444; font-size: .9rem; margin: .4rem 0 1rem; }
  fieldset { border: 1px solid #d4d4d8; border-radius: 6px; padding: .4rem .8rem .6rem; }
  legend { color: #555; font-size: .9rem; }
  #passages { list-style: none; padding: 0; }
  #passages li { margin-bottom: .8rem; scroll-margin-top: 1rem; }
  #passages li:target { outline: 2px solid #1d4ed8; outline-offset: 3px; }
  #passages .num { display: inline-block; min-width: 1.6rem; text-align: center; font-weight: 700; background: #1d4ed8; color: #fff; border-radius: 4px; margin-right: .4rem; }
  #passages .meta { color: #666; font-size: .85rem; }
  .chunks { line-height: 1.9; margin-top: .2rem; }
  .chunk { border-radius: 3px; padding: .05rem .15rem; margin-right: 2px; }
  .chunk.compressed { background: #e5e7eb; color: #6b7280; }
  .chunk.expanded { background: #fde68a; color: #1d1d1f; box-shadow: inset 0 -2px 0 #d97706; }
  .legend { font-size: .85rem; color: #555; }
  .legend .chunk { font-size: .8rem; }
  #answer a { color: #1d4ed8; font-weight: 600; }
  .error { color: #b91c1c; }
</style>
</head>
<body>
<h1>refrag</h1>
<p class="sub">Model <b>${escapeHtml(modelName)}</b>. Passages are read as one vector per chunk of tokens; a
selection keeps some chunks as raw tokens.</p>
<form id="ask">
  <textarea id="question" placeholder="Ask a question" required></textarea>
  ${hasIndex ? "" : '<textarea id="context" placeholder="Passages, separated by blank lines" required></textarea>'}
  <fieldset class="row" id="panel"><legend>Compression</legend>
    ${hasIndex ? '<label>passages <input id="k" type="number" min="1" max="32" value="5" style="width:4rem"></label>' : ""}
    <label>expand chunks <select id="mode">${MODE_OPTIONS.map(
      ([v, label]) =>
        `<option value="${v}"${v === DEFAULT_SELECTION.mode ? " selected" : ""}>${label}</option>`,
    ).join("")}</select></label>
    <label>fraction <input id="fraction" type="number" min="0" max="1" step="0.05" value="${DEFAULT_SELECTION.fraction}" style="width:5rem"></label>
    <label>max tokens <input id="max" type="number" min="1" max="512" value="64" style="width:5rem"></label>
  </fieldset>
  <div class="row">
    <button id="go" type="submit">Ask</button>
    <button id="reset" type="button" title="forget the earlier turns">New conversation</button>
  </div>
</form>
<div id="turns"></div>
<div id="answer"></div>
<div id="stats"></div>
<p class="legend">Each passage is cut into chunks of k tokens: <span class="chunk compressed">compressed</span> chunks
reach the decoder as one vector each, <span class="chunk expanded">expanded</span> chunks as their tokens.</p>
<ol id="passages"></ol>
<script>
const $ = (id) => document.getElementById(id);
let controller = null;
let history = []; // earlier {question, answer} turns of this conversation
let answerText = "";
const esc = (s) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
// "[2]", "passage 2", "Passage #2" become links to the passage they name.
function linkPassages(text, count) {
  return esc(text).replace(/\\[(\\d+)\\]|\\b(passage) #?(\\d+)/gi, (m, a, word, b) => {
    const n = Number(a ?? b);
    return n >= 1 && n <= count ? '<a href="#passage-' + n + '">' + m + "</a>" : m;
  });
}
window.linkPassages = linkPassages;
function showPassage(p) {
  const li = document.createElement("li"); li.id = "passage-" + p.number;
  const meta = document.createElement("div"); meta.className = "meta";
  const num = document.createElement("span"); num.className = "num"; num.textContent = p.number;
  const exp = p.expanded.filter((e) => e).length;
  meta.append(num, (p.title ? p.title + " · " : "") + p.id + (p.score !== null ? " · score " + p.score.toFixed(2) : "") +
    " · " + p.tokens + " tokens in " + p.expanded.length + " chunks, " + exp + " expanded");
  const chunks = document.createElement("div"); chunks.className = "chunks";
  p.chunkText.forEach((t, i) => {
    const c = document.createElement("span"); c.className = "chunk " + (p.expanded[i] ? "expanded" : "compressed");
    c.title = "chunk " + (i + 1) + (p.expanded[i] ? ": read as tokens" : ": read as one vector");
    c.textContent = t; chunks.append(c);
  });
  li.append(meta, chunks); $("passages").append(li);
}
$("reset").addEventListener("click", () => { history = []; answerText = ""; $("turns").innerHTML = ""; $("answer").textContent = ""; $("stats").textContent = ""; $("passages").innerHTML = ""; });
$("ask").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (controller) controller.abort();
  controller = new AbortController();
  const body = {
    question: $("question").value,
    selection: { mode: $("mode").value, fraction: Number($("fraction").value) },
    max_tokens: Number($("max").value),
    history,
  };
  if ($("context")) body.passages = $("context").value.split(/\\n\\s*\\n/).filter((p) => p.trim() !== "");
  if ($("k")) body.k = Number($("k").value);
  $("answer").textContent = ""; answerText = ""; $("stats").textContent = "…"; $("passages").innerHTML = ""; $("go").disabled = true;
  let count = 0;
  const t0 = performance.now();
  try {
    const res = await fetch("/v1/answer", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: controller.signal });
    if (!res.ok) throw new Error((await res.json()).error ?? res.statusText);
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\\n\\n")) >= 0) {
        const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "null");
        if (event === "token") { answerText += data.text; $("answer").innerHTML = linkPassages(answerText, count); }
        else if (event === "passages") { count = data.length; data.forEach(showPassage); }
        else if (event === "done") {
          const turn = document.createElement("div"); turn.className = "turn";
          const q = document.createElement("div"); q.className = "q"; q.textContent = body.question;
          const a = document.createElement("div"); a.innerHTML = linkPassages(answerText, count);
          turn.append(q, a); $("turns").append(turn);
          history = [...history, { question: body.question, answer: answerText }];
          $("answer").textContent = ""; $("question").value = "";
          $("stats").textContent = "time to first token " + data.ttftMs.toFixed(0) + " ms · " + data.generated + " tokens in " +
            data.totalMs.toFixed(0) + " ms · decoder read " + data.promptPositions + " positions instead of " + data.fullPositions +
            " (" + (data.fullPositions / data.promptPositions).toFixed(1) + "× fewer) for " + data.contextTokens +
            " context tokens (k = " + data.chunkSize + ") · " + data.finishReason;
        } else if (event === "error") throw new Error(data.error);
      }
    }
  } catch (e) {
    if (e.name !== "AbortError") { $("stats").innerHTML = ""; const s = document.createElement("span"); s.className = "error"; s.textContent = e.message; $("stats").append(s); }
  } finally { $("go").disabled = false; }
});
</script>
</body>
</html>
`;
}
