// The demo page: one self-contained HTML document (no build step, no external assets). It streams the
// answer from POST /v1/answer and shows the passages used and what compression bought.
const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

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
  #passages li { margin-bottom: .5rem; }
  #passages .meta { color: #666; font-size: .85rem; }
  .error { color: #b91c1c; }
</style>
</head>
<body>
<h1>refrag</h1>
<p class="sub">Model <b>${escapeHtml(modelName)}</b>. Passages are read as one vector per chunk of tokens; a
policy can keep some chunks as raw tokens.</p>
<form id="ask">
  <textarea id="question" placeholder="Ask a question" required></textarea>
  ${hasIndex ? "" : '<textarea id="context" placeholder="Passages, separated by blank lines" required></textarea>'}
  <div class="row">
    ${hasIndex ? '<label>passages <input id="k" type="number" min="1" max="32" value="5" style="width:4rem"></label>' : ""}
    <label>expand chunks <select id="mode">
      <option value="none">none (all compressed)</option><option value="policy">policy</option>
      <option value="perplexity-desc">perplexity (high first)</option><option value="random">random</option>
      <option value="all">all (full context)</option></select></label>
    <label>fraction <input id="fraction" type="number" min="0" max="1" step="0.05" value="0.25" style="width:5rem"></label>
    <label>max tokens <input id="max" type="number" min="1" max="512" value="64" style="width:5rem"></label>
    <button id="go" type="submit">Ask</button>
    <button id="reset" type="button" title="forget the earlier turns">New conversation</button>
  </div>
</form>
<div id="turns"></div>
<div id="answer"></div>
<div id="stats"></div>
<ol id="passages"></ol>
<script>
const $ = (id) => document.getElementById(id);
let controller = null;
let history = []; // earlier {question, answer} turns of this conversation
$("reset").addEventListener("click", () => { history = []; $("turns").innerHTML = ""; $("answer").textContent = ""; $("stats").textContent = ""; $("passages").innerHTML = ""; });
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
  $("answer").textContent = ""; $("stats").textContent = "…"; $("passages").innerHTML = ""; $("go").disabled = true;
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
        if (event === "token") $("answer").textContent += data.text;
        else if (event === "passages") for (const p of data) {
          const li = document.createElement("li");
          const meta = document.createElement("div"); meta.className = "meta";
          meta.textContent = (p.title ? p.title + " · " : "") + p.id + (p.score !== null ? " · score " + p.score.toFixed(2) : "");
          const text = document.createElement("div"); text.textContent = p.text.length > 400 ? p.text.slice(0, 400) + "…" : p.text;
          li.append(meta, text); $("passages").append(li);
        } else if (event === "done") {
          const turn = document.createElement("div"); turn.className = "turn";
          const q = document.createElement("div"); q.className = "q"; q.textContent = body.question;
          const a = document.createElement("div"); a.textContent = $("answer").textContent;
          turn.append(q, a); $("turns").append(turn);
          history = [...history, { question: body.question, answer: $("answer").textContent }];
          $("answer").textContent = ""; $("question").value = "";
          $("stats").textContent = "time to first token " + data.ttftMs.toFixed(0) + " ms · " + data.generated + " tokens in " +
            data.totalMs.toFixed(0) + " ms · decoder read " + data.promptPositions + " positions for " + data.contextTokens +
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
