// A plain JavaScript LLaMA forward pass (float64, no KV cache), used ONLY to check the GGUF exporter
// against llama.cpp. It reads a Hugging Face-layout checkpoint folder and follows transformers'
// LlamaForCausalLM: RMSNorm, rotate-half RoPE, grouped-query causal attention, SwiGLU, tied or untied head.
// The project's real decoder lives in src/models; this file exists so the check does not depend on it.
//
// Usage: node ref_forward.mjs CHECKPOINT_DIR 0,15,200,77   -> JSON {probs top-10, ...} on stdout
import { loadCheckpoint } from "../../dist/src/io/checkpoint.js";
import { parseLlamaConfig } from "../../dist/src/io/config.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../dist/src/io/half.js";

function f64(t, name) {
  if (t === undefined) throw new Error(`ref_forward: missing tensor ${name}`);
  const f =
    t.dtype === "F32"
      ? t.data
      : t.dtype === "BF16"
        ? bf16ToF32(t.data)
        : t.dtype === "F16"
          ? f16ToF32(t.data)
          : null;
  if (f === null) throw new Error(`ref_forward: tensor ${name} has dtype ${t.dtype}`);
  return Float64Array.from(f);
}

/** y[o] = sum_i W[o, i] x[i]; W row-major [out, in] (PyTorch Linear layout). */
function matvec(W, x, out, inp) {
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = 0;
    const row = o * inp;
    for (let i = 0; i < inp; i++) s += W[row + i] * x[i];
    y[o] = s;
  }
  return y;
}

function rmsnorm(x, w, eps) {
  let ss = 0;
  for (const v of x) ss += v * v;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * r * w[i]);
}

/** transformers' rotate_half RoPE on one head vector (pairs i and i + d/2), in place. */
function rope(v, off, d, pos, theta) {
  const half = d / 2;
  for (let i = 0; i < half; i++) {
    const freq = 1 / Math.pow(theta, (2 * i) / d);
    const a = pos * freq;
    const c = Math.cos(a);
    const s = Math.sin(a);
    const x0 = v[off + i];
    const x1 = v[off + i + half];
    v[off + i] = x0 * c - x1 * s;
    v[off + i + half] = x1 * c + x0 * s;
  }
}

/** Round a vector through f16 / bf16 (ggml's CPU matmul converts activations to the weight type). */
function roundTo(dtype, x) {
  if (dtype === "F32") return x;
  const f = Float32Array.from(x);
  return Float64Array.from(dtype === "BF16" ? bf16ToF32(f32ToBf16(f)) : f16ToF32(f32ToF16(f)));
}

/**
 * Logits at every position for a prompt of token ids. With emulateGgml, the input of a matmul against an
 * f16 / bf16 weight is first rounded to that type, as llama.cpp's CPU backend does; the rest stays float64.
 */
export function llamaForward(cfg, tensors, ids, { emulateGgml = false } = {}) {
  const H = cfg.hidden_size;
  const nh = cfg.num_attention_heads;
  const nkv = cfg.num_key_value_heads;
  const hd = cfg.head_dim;
  const ff = cfg.intermediate_size;
  const V = cfg.vocab_size;
  const T = ids.length;
  const w = (n) => f64(tensors.get(n), n);
  const wdt = (n) => (emulateGgml ? tensors.get(n).dtype : "F32");
  const mv = (n, W, x, out, inp) => matvec(W, roundTo(wdt(n), x), out, inp);
  const emb = w("model.embed_tokens.weight");
  let xs = ids.map((id) => emb.slice(id * H, (id + 1) * H));
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    const [Wq, Wk, Wv, Wo] = ["q", "k", "v", "o"].map((n) => w(`${p}self_attn.${n}_proj.weight`));
    const [Wg, Wu, Wd] = ["gate", "up", "down"].map((n) => w(`${p}mlp.${n}_proj.weight`));
    const ln1 = w(p + "input_layernorm.weight");
    const ln2 = w(p + "post_attention_layernorm.weight");
    const q = [];
    const k = [];
    const v = [];
    for (let t = 0; t < T; t++) {
      const h = rmsnorm(xs[t], ln1, cfg.rms_norm_eps);
      const qt = mv(p + "self_attn.q_proj.weight", Wq, h, nh * hd, H);
      const kt = mv(p + "self_attn.k_proj.weight", Wk, h, nkv * hd, H);
      for (let a = 0; a < nh; a++) rope(qt, a * hd, hd, t, cfg.rope_theta);
      for (let a = 0; a < nkv; a++) rope(kt, a * hd, hd, t, cfg.rope_theta);
      q.push(qt);
      k.push(kt);
      v.push(mv(p + "self_attn.v_proj.weight", Wv, h, nkv * hd, H));
    }
    const next = [];
    for (let t = 0; t < T; t++) {
      const att = new Float64Array(nh * hd);
      for (let a = 0; a < nh; a++) {
        const g = Math.floor(a / (nh / nkv)); // query head a reads kv head g
        const scores = [];
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += q[t][a * hd + i] * k[s][g * hd + i];
          scores.push(dot / Math.sqrt(hd));
        }
        const m = Math.max(...scores);
        const e = scores.map((x) => Math.exp(x - m));
        const z = e.reduce((x, y) => x + y, 0);
        for (let s = 0; s <= t; s++)
          for (let i = 0; i < hd; i++) att[a * hd + i] += (e[s] / z) * v[s][g * hd + i];
      }
      const o = mv(p + "self_attn.o_proj.weight", Wo, att, H, nh * hd);
      const x1 = xs[t].map((val, i) => val + o[i]);
      const h2 = rmsnorm(x1, ln2, cfg.rms_norm_eps);
      const gate = mv(p + "mlp.gate_proj.weight", Wg, h2, ff, H);
      const up = mv(p + "mlp.up_proj.weight", Wu, h2, ff, H);
      const act = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]);
      const down = mv(p + "mlp.down_proj.weight", Wd, act, H, ff);
      next.push(x1.map((val, i) => val + down[i]));
    }
    xs = next;
  }
  const norm = w("model.norm.weight");
  const headName = cfg.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  const head = w(headName);
  return xs.map((x) => mv(headName, head, rmsnorm(x, norm, cfg.rms_norm_eps), V, H));
}

export function softmax(logits) {
  const m = Math.max(...logits);
  const e = Array.from(logits, (x) => Math.exp(x - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

export function topK(probs, k) {
  return probs
    .map((p, id) => ({ id, p }))
    .sort((a, b) => b.p - a.p)
    .slice(0, k);
}

/** Next-token probabilities (after the last prompt token) from a checkpoint folder. */
export async function referenceNextToken(dir, ids, opts = {}) {
  const ck = await loadCheckpoint(dir);
  const cfg = parseLlamaConfig(ck.rawConfig);
  const logits = llamaForward(cfg, ck.tensors, ids, opts);
  return softmax(logits[logits.length - 1]);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [dir, idsArg] = process.argv.slice(2);
  if (dir === undefined || idsArg === undefined) {
    console.error("usage: node ref_forward.mjs CHECKPOINT_DIR 0,15,200");
    process.exit(2);
  }
  const probs = await referenceNextToken(dir, idsArg.split(",").map(Number));
  console.log(JSON.stringify({ top10: topK(probs, 10) }, null, 2));
}
