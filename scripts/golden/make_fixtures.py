#!/usr/bin/python3
"""Golden fixtures for the model tests, from an independent PyTorch implementation.

Writes test/fixtures/golden/<case>/{config.json, model.safetensors, io.safetensors}: fixed small weights
with Hugging Face names, the inputs, and the outputs computed here in float64. The TypeScript tests load
them and must match within 1e-4 relative error. Needs only PyTorch (Debian: apt-get install python3-torch);
the tests need neither PyTorch nor this script.

    /usr/bin/python3 scripts/golden/make_fixtures.py
"""
import json
import math
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "golden")


def write_safetensors(path, tensors):
    """Minimal safetensors writer (F32 and I32), names sorted, 8-byte aligned header."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        if t.dtype == torch.int32:
            dtype, raw = "I32", t.numpy().astype("<i4").tobytes()
        else:
            dtype, raw = "F32", t.to(torch.float32).numpy().astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def save_case(name, config, weights, io):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(d, "model.safetensors"), {k: v.float() for k, v in weights.items()})
    write_safetensors(os.path.join(d, "io.safetensors"), io)
    print(f"wrote {d}: {len(weights)} weights, outputs {[k for k in io if k.startswith('out')]}")


def rand_weights(shapes, gen):
    w = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight") or name.endswith("LayerNorm.weight") or name.endswith("layer_norm.weight"):
            w[name] = 1 + 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
        elif name.endswith("bias"):
            w[name] = 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
        else:
            w[name] = 0.2 * torch.randn(shape, generator=gen, dtype=torch.float64)
    # Round to float32 so both sides start from identical weights.
    return {k: v.float().double() for k, v in w.items()}


# ----------------------------------------------------------------------------------------- LLaMA


def llama_shapes(c):
    C, I, V, D = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["hidden_size"] // c["num_attention_heads"]
    H, Hkv = c["num_attention_heads"], c["num_key_value_heads"]
    s = {"model.embed_tokens.weight": (V, C), "model.norm.weight": (C,)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        s[p + "self_attn.q_proj.weight"] = (H * D, C)
        s[p + "self_attn.k_proj.weight"] = (Hkv * D, C)
        s[p + "self_attn.v_proj.weight"] = (Hkv * D, C)
        s[p + "self_attn.o_proj.weight"] = (C, H * D)
        s[p + "mlp.gate_proj.weight"] = (I, C)
        s[p + "mlp.up_proj.weight"] = (I, C)
        s[p + "mlp.down_proj.weight"] = (C, I)
        s[p + "input_layernorm.weight"] = (C,)
        s[p + "post_attention_layernorm.weight"] = (C,)
    if not c["tie_word_embeddings"]:
        s["lm_head.weight"] = (V, C)
    return s


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def llama_forward(c, w, inputs_embeds):
    T, C = inputs_embeds.shape
    H, Hkv = c["num_attention_heads"], c["num_key_value_heads"]
    D = C // H
    pos = torch.arange(T, dtype=torch.float64)
    inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    freqs = torch.outer(pos, inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    h = inputs_embeds
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x = rms_norm(h, w[p + "input_layernorm.weight"], c["rms_norm_eps"])
        q = (x @ w[p + "self_attn.q_proj.weight"].T).view(T, H, D)
        k = (x @ w[p + "self_attn.k_proj.weight"].T).view(T, Hkv, D)
        v = (x @ w[p + "self_attn.v_proj.weight"].T).view(T, Hkv, D)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = H // Hkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        scores = torch.einsum("thd,shd->hts", q, k) / math.sqrt(D) + mask
        att = torch.einsum("hts,shd->thd", torch.softmax(scores, dim=-1), v).reshape(T, H * D)
        h = h + att @ w[p + "self_attn.o_proj.weight"].T
        x = rms_norm(h, w[p + "post_attention_layernorm.weight"], c["rms_norm_eps"])
        g = x @ w[p + "mlp.gate_proj.weight"].T
        u = x @ w[p + "mlp.up_proj.weight"].T
        h = h + (torch.nn.functional.silu(g) * u) @ w[p + "mlp.down_proj.weight"].T
    h = rms_norm(h, w["model.norm.weight"], c["rms_norm_eps"])
    head = w["model.embed_tokens.weight"] if c["tie_word_embeddings"] else w["lm_head.weight"]
    return h @ head.T, h


def llama_case(name, c, seed):
    gen = torch.Generator().manual_seed(seed)
    w = rand_weights(llama_shapes(c), gen)
    V, C = c["vocab_size"], c["hidden_size"]
    ids = torch.randint(0, V, (9,), generator=gen, dtype=torch.int64)
    logits, hidden = llama_forward(c, w, w["model.embed_tokens.weight"][ids])
    # Mixed input: question tokens, then float vectors (REFRAG chunk embeddings), then more tokens.
    q_ids = torch.randint(0, V, (4,), generator=gen, dtype=torch.int64)
    vecs = (0.5 * torch.randn(3, C, generator=gen, dtype=torch.float64)).float().double()
    t_ids = torch.randint(0, V, (2,), generator=gen, dtype=torch.int64)
    embeds = torch.cat([w["model.embed_tokens.weight"][q_ids], vecs, w["model.embed_tokens.weight"][t_ids]])
    mixed_logits, _ = llama_forward(c, w, embeds)
    io = {
        "ids": ids.to(torch.int32),
        "out_logits": logits,
        "out_hidden": hidden,
        "mixed_q_ids": q_ids.to(torch.int32),
        "mixed_vectors": vecs,
        "mixed_t_ids": t_ids.to(torch.int32),
        "out_mixed_logits": mixed_logits,
    }
    save_case(name, c, w, io)


# ----------------------------------------------------------------------------------------- RoBERTa


def roberta_shapes(c):
    C, I, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    s = {
        "embeddings.word_embeddings.weight": (V, C),
        "embeddings.position_embeddings.weight": (c["max_position_embeddings"], C),
        "embeddings.token_type_embeddings.weight": (c["type_vocab_size"], C),
        "embeddings.LayerNorm.weight": (C,),
        "embeddings.LayerNorm.bias": (C,),
    }
    for i in range(c["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for n in ["query", "key", "value"]:
            s[p + f"attention.self.{n}.weight"] = (C, C)
            s[p + f"attention.self.{n}.bias"] = (C,)
        s[p + "attention.output.dense.weight"] = (C, C)
        s[p + "attention.output.dense.bias"] = (C,)
        s[p + "attention.output.LayerNorm.weight"] = (C,)
        s[p + "attention.output.LayerNorm.bias"] = (C,)
        s[p + "intermediate.dense.weight"] = (I, C)
        s[p + "intermediate.dense.bias"] = (I,)
        s[p + "output.dense.weight"] = (C, I)
        s[p + "output.dense.bias"] = (C,)
        s[p + "output.LayerNorm.weight"] = (C,)
        s[p + "output.LayerNorm.bias"] = (C,)
    return s


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = (x - mu).pow(2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def roberta_forward(c, w, ids, lengths):
    B, T = ids.shape
    C, H = c["hidden_size"], c["num_attention_heads"]
    D = C // H
    pad = c["pad_token_id"]
    valid = torch.arange(T)[None, :] < lengths[:, None]
    # Hugging Face: positions = cumsum(mask) * mask + padding_idx
    pos = torch.cumsum(valid.long(), dim=1) * valid.long() + pad
    eps = c["layer_norm_eps"]
    h = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][pos]
    h = h + w["embeddings.token_type_embeddings.weight"][torch.zeros_like(ids)]
    h = layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    key_mask = torch.where(valid, 0.0, float("-inf")).double()[:, None, None, :]  # [B,1,1,T]
    for i in range(c["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda x, n: x @ w[p + n + ".weight"].T + w[p + n + ".bias"]
        q = lin(h, "attention.self.query").view(B, T, H, D).transpose(1, 2)
        k = lin(h, "attention.self.key").view(B, T, H, D).transpose(1, 2)
        v = lin(h, "attention.self.value").view(B, T, H, D).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(D) + key_mask
        att = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, C)
        h = layer_norm(lin(att, "attention.output.dense") + h, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        inter = torch.nn.functional.gelu(lin(h, "intermediate.dense"))
        h = layer_norm(lin(inter, "output.dense") + h, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    cls = h[:, 0, :]
    mean = torch.stack([h[b, : lengths[b]].mean(0) for b in range(B)])
    return h, cls, mean


def roberta_case(name, c, seed):
    gen = torch.Generator().manual_seed(seed)
    w = rand_weights(roberta_shapes(c), gen)
    lengths = torch.tensor([5, 3, 7, 1])
    B, T = len(lengths), int(lengths.max())
    ids = torch.randint(3, c["vocab_size"], (B, T), generator=gen, dtype=torch.int64)
    ids[torch.arange(T)[None, :] >= lengths[:, None]] = c["pad_token_id"]
    h, cls, mean = roberta_forward(c, w, ids, lengths)
    io = {"ids": ids.to(torch.int32), "lengths": lengths.to(torch.int32), "out_hidden": h, "out_cls": cls, "out_mean": mean}
    save_case(name, c, w, io)


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    base = dict(model_type="llama", architectures=["LlamaForCausalLM"], vocab_size=61, hidden_size=32, intermediate_size=48,
                num_hidden_layers=2, rms_norm_eps=1e-6, max_position_embeddings=64, hidden_act="silu", torch_dtype="float32")
    llama_case("llama_gqa", dict(base, num_attention_heads=4, num_key_value_heads=2, rope_theta=500000.0, tie_word_embeddings=False), 1)
    llama_case("llama_tied", dict(base, num_attention_heads=2, num_key_value_heads=2, rope_theta=10000.0, tie_word_embeddings=True), 2)
    roberta_case("roberta", dict(model_type="roberta", architectures=["RobertaModel"], vocab_size=50, hidden_size=32, num_hidden_layers=2,
                                 num_attention_heads=4, intermediate_size=64, hidden_act="gelu", max_position_embeddings=40,
                                 type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2), 3)
