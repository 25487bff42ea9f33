// Safetensors: bit-exact round trips per dtype, f16/bf16 rounding, and one rejection test per header fault.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freshRng } from "../helpers.js";
import {
  SafetensorsFile,
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  writeSafetensors,
  MAX_HEADER_BYTES,
  type StTensor,
} from "../../src/io/safetensors.js";
import {
  bf16ToF32,
  f16ToF32,
  f16ToF32Scalar,
  f32ToBf16,
  f32ToF16,
  f32ToF16Scalar,
  f32BitsToF16,
  f16ToF32Bits,
} from "../../src/io/half.js";

async function tmp(): Promise<string> {
  return mkdtemp(join(tmpdir(), "refrag-st-"));
}

function randomBits16(n: number, rng: { nextU32(): number }): Uint16Array {
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.nextU32() & 0xffff;
  return out;
}

function bytesOf(t: StTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

test("round trip is bit-exact for every dtype, whole-file and lazy", async () => {
  const { rng, seed } = freshRng();
  const f32 = rng.randn(7 * 33);
  f32[0] = -0;
  f32[1] = Number.NaN;
  f32[2] = Infinity;
  const tensors: Record<string, StTensor> = {
    "model.layers.0.self_attn.q_proj.weight": { dtype: "F32", shape: [7, 33], data: f32 },
    h16: { dtype: "F16", shape: [257], data: randomBits16(257, rng) },
    b16: { dtype: "BF16", shape: [3, 1, 5], data: randomBits16(15, rng) },
    i32: { dtype: "I32", shape: [4], data: new Int32Array([1, -2, 2147483647, -2147483648]) },
    i64: { dtype: "I64", shape: [2], data: new BigInt64Array([1n, -(2n ** 62n)]) },
    u8: { dtype: "U8", shape: [1], data: new Uint8Array([255]) },
    mask: { dtype: "BOOL", shape: [3], data: new Uint8Array([1, 0, 1]) },
    f64: { dtype: "F64", shape: [1], data: new Float64Array([Math.PI]) },
    empty: { dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
    scalar: { dtype: "F32", shape: [], data: new Float32Array([2.5]) },
  };
  const dir = await tmp();
  try {
    const path = join(dir, "m.safetensors");
    await writeSafetensors(path, tensors, { format: "pt" });
    const raw = await readFile(path);
    // Data region starts on an 8-byte boundary; encoding is deterministic.
    assert.equal(Number(raw.readBigUInt64LE(0)) % 8, 0);
    assert.deepEqual(new Uint8Array(raw), encodeSafetensors(tensors, { format: "pt" }));
    const whole = await readSafetensors(path);
    const lazy = await SafetensorsFile.open(path);
    try {
      assert.deepEqual(whole.metadata, { format: "pt" });
      assert.deepEqual(lazy.names().slice().sort(), Object.keys(tensors).sort());
      for (const [name, t] of Object.entries(tensors)) {
        for (const got of [whole.tensors.get(name)!, await lazy.read(name)]) {
          assert.equal(got.dtype, t.dtype, name);
          assert.deepEqual(got.shape, t.shape, name);
          assert.equal(got.data.constructor, t.data.constructor, name);
          assert.deepEqual(bytesOf(got), bytesOf(t), `${name} bytes (seed ${seed})`);
        }
      }
    } finally {
      await lazy.close();
    }
    // No temp files left behind.
    assert.deepEqual(await readdir(dir), ["m.safetensors"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("decode of an unaligned buffer copies instead of failing", () => {
  const enc = encodeSafetensors({ a: { dtype: "F32", shape: [3], data: new Float32Array([1, 2, 3]) } });
  const shifted = new Uint8Array(enc.byteLength + 1).subarray(1);
  shifted.set(enc);
  assert.deepEqual([...(decodeSafetensors(shifted).tensors.get("a")!.data as Float32Array)], [1, 2, 3]);
});

test("f16 conversion: exact round trip of every f16 value, ties to even, overflow and subnormals", () => {
  for (let h = 0; h < 0x10000; h++) {
    const exp = (h >>> 10) & 0x1f;
    const back = f32BitsToF16(f16ToF32Bits(h));
    if (exp === 0x1f && (h & 0x3ff) !== 0)
      assert.ok((back & 0x7c00) === 0x7c00 && (back & 0x3ff) !== 0, `NaN ${h}`);
    else assert.equal(back, h, `f16 ${h.toString(16)}`);
  }
  // Midpoints between neighbours round to the even one; just above/below go to the nearer one.
  for (let h = 0; h < 0x7bff; h += 37) {
    const lo = f16ToF32Scalar(h);
    const hi = f16ToF32Scalar(h + 1);
    const mid = (lo + hi) / 2; // exact in f64 and in f32 (one more bit)
    assert.equal(f32ToF16Scalar(mid), h % 2 === 0 ? h : h + 1, `tie at ${h}`);
    assert.equal(f32ToF16Scalar(mid * (1 - 2 ** -20)), h, `below tie ${h}`);
    assert.equal(f32ToF16Scalar(mid * (1 + 2 ** -20)), h + 1, `above tie ${h}`);
  }
  assert.equal(f32ToF16Scalar(65520), 0x7c00); // rounds past the largest finite (65504)
  assert.equal(f32ToF16Scalar(65519), 0x7bff);
  assert.equal(f32ToF16Scalar(2 ** -25), 0); // half the smallest subnormal: tie to even (zero)
  assert.equal(f32ToF16Scalar(2 ** -25 * 1.01), 1);
  assert.equal(f32ToF16Scalar(-(2 ** -24)), 0x8001);
  const xs = new Float32Array([0.1, -3.5, 1e-6, 70000]);
  assert.deepEqual(
    [...f16ToF32(f32ToF16(xs))],
    [f16ToF32Scalar(f32ToF16Scalar(0.1)), -3.5, f16ToF32Scalar(f32ToF16Scalar(1e-6)), Infinity],
  );
});

test("bf16 conversion: round to nearest even, NaN kept", () => {
  const x = new Float32Array([
    1,
    1 + 2 ** -8,
    1 + 3 * 2 ** -8,
    1 + 2 ** -8 + 2 ** -20,
    -2.5,
    Number.NaN,
    3.4e38,
  ]);
  const b = f32ToBf16(x);
  assert.deepEqual([...b.slice(0, 5)], [0x3f80, 0x3f80, 0x3f82, 0x3f81, 0xc020]);
  assert.ok(Number.isNaN(bf16ToF32(b)[5]));
  assert.equal(bf16ToF32(b)[6], Infinity); // 3.4e38 is above bf16's largest finite after rounding
  const { rng } = freshRng();
  const v = rng.randn(1000);
  const back = bf16ToF32(f32ToBf16(v));
  for (let i = 0; i < v.length; i++)
    assert.ok(Math.abs(back[i] - v[i]) <= Math.abs(v[i]) * 2 ** -8, `bf16 error at ${v[i]}`);
});

// ----------------------------------------------------------------------------------------------------
// Rejections: build a file by hand, expect a clear message naming the file and the problem.

function fileWith(header: unknown, dataBytes: number, lengthOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + dataBytes);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  return out;
}

async function expectRejected(bytes: Uint8Array, pattern: RegExp): Promise<void> {
  const dir = await tmp();
  try {
    const path = join(dir, "bad.safetensors");
    await writeFile(path, bytes);
    await assert.rejects(readSafetensors(path), (e: Error) => {
      assert.match(e.message, /bad\.safetensors/);
      assert.match(e.message, pattern);
      return true;
    });
    await assert.rejects(SafetensorsFile.open(path), pattern);
    assert.throws(() => decodeSafetensors(bytes, "bad.safetensors"), pattern);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const good = {
  a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
  b: { dtype: "F16", shape: [2, 2], data_offsets: [8, 16] },
};

test("accepts the hand-built valid file used by the rejection tests", () => {
  const { tensors } = decodeSafetensors(fileWith(good, 16));
  assert.deepEqual(tensors.get("b")!.shape, [2, 2]);
});

test("rejects a truncated file", async () => {
  const full = encodeSafetensors({ w: { dtype: "F32", shape: [4, 4], data: new Float32Array(16).fill(1) } });
  await expectRejected(full.subarray(0, full.byteLength - 5), /tensor "w".*past the data region.*truncated/);
  await expectRejected(full.subarray(0, 20), /header length \d+ runs past the end/);
  await expectRejected(full.subarray(0, 5), /shorter than the 8-byte header length/);
});

test("rejects overlapping offsets", async () => {
  const h = {
    a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
  };
  await expectRejected(fileWith(h, 12), /tensor "b".*overlap tensor "a"/);
});

test("rejects gaps and trailing bytes in the data region", async () => {
  const gap = {
    a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
    b: { dtype: "F32", shape: [1], data_offsets: [8, 12] },
  };
  await expectRejected(fileWith(gap, 12), /tensor "b".*gap/);
  await expectRejected(fileWith(good, 20), /trailing bytes/);
});

test("rejects an oversized header length", async () => {
  await expectRejected(fileWith(good, 16, BigInt(MAX_HEADER_BYTES) + 1n), /exceeds the limit/);
  await expectRejected(fileWith(good, 16, 2n ** 63n), /exceeds the limit/);
});

test("rejects malformed headers: not JSON, not an object, bad shape, bad offsets, bad metadata", async () => {
  await expectRejected(fileWith("{not json", 0), /not valid JSON/);
  await expectRejected(fileWith("[1, 2]", 0), /does not start with '\{'/);
  await expectRejected(fileWith("{}x", 0), /not valid JSON/);
  await expectRejected(fileWith({ a: 3 }, 0), /tensor "a": entry is not an object/);
  await expectRejected(
    fileWith({ a: { dtype: "F32", shape: [-1], data_offsets: [0, 0] } }, 0),
    /tensor "a": shape \[-1\]/,
  );
  await expectRejected(
    fileWith({ a: { dtype: "F32", shape: [1.5], data_offsets: [0, 0] } }, 0),
    /tensor "a": shape/,
  );
  await expectRejected(
    fileWith({ a: { dtype: "F32", shape: "2", data_offsets: [0, 8] } }, 8),
    /tensor "a": shape/,
  );
  await expectRejected(
    fileWith({ a: { dtype: "F32", shape: [2], data_offsets: [0] } }, 8),
    /tensor "a": data_offsets/,
  );
  await expectRejected(
    fileWith({ a: { dtype: "F32", shape: [0], data_offsets: [4, 0] } }, 4),
    /end before begin/,
  );
  await expectRejected(fileWith({ a: { dtype: "F32", shape: [2] } }, 8), /tensor "a": data_offsets/);
  await expectRejected(fileWith({ __metadata__: { n: 1 } }, 0), /__metadata__\["n"\] is not a string/);
  await expectRejected(
    fileWith({ a: { dtype: "F32", shape: [0], data_offsets: [0, 0], extra: 1 } }, 0),
    /unknown field "extra"/,
  );
  const badUtf8 = fileWith("{}  ", 0);
  badUtf8[10] = 0xff;
  await expectRejected(badUtf8, /not valid UTF-8/);
});

test("rejects a wrong byte length for the dtype", async () => {
  await expectRejected(
    fileWith({ a: { dtype: "BF16", shape: [3], data_offsets: [0, 8] } }, 8),
    /tensor "a": BF16 shape \[3\] needs 6 bytes but data_offsets \[0, 8\] hold 8/,
  );
});

test("rejects an unknown dtype", async () => {
  await expectRejected(
    fileWith({ a: { dtype: "F8_E4M3X", shape: [1], data_offsets: [0, 1] } }, 1),
    /tensor "a": unknown dtype "F8_E4M3X"/,
  );
});

test("writer validates tensors and leaves no partial file", async () => {
  const dir = await tmp();
  try {
    const path = join(dir, "w.safetensors");
    await writeSafetensors(path, { ok: { dtype: "F32", shape: [1], data: new Float32Array([1]) } });
    const before = await readFile(path);
    const bad = { ok: { dtype: "F32", shape: [2, 2], data: new Float32Array(3) } } as Record<
      string,
      StTensor
    >;
    await assert.rejects(
      writeSafetensors(path, bad),
      /tensor "ok": shape \[2, 2\] has 4 elements but data has 3/,
    );
    const wrongType = { x: { dtype: "F16", shape: [1], data: new Float32Array(1) } } as unknown as Record<
      string,
      StTensor
    >;
    await assert.rejects(
      writeSafetensors(path, wrongType),
      /dtype F16 needs a Uint16Array, got Float32Array/,
    );
    assert.deepEqual(await readFile(path), before);
    assert.deepEqual(await readdir(dir), ["w.safetensors"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("reads a file written by the reference Python safetensors library (fixture)", async () => {
  // test/fixtures/io/python_safetensors_0.8.0.safetensors: safetensors.numpy.save_file, see docs/formats.md
  const path = new URL("../../../test/fixtures/io/python_safetensors_0.8.0.safetensors", import.meta.url);
  const { tensors, metadata } = await readSafetensors(path.pathname);
  assert.deepEqual(metadata, { format: "pt", writer: "safetensors 0.8.0 (python, numpy)" });
  const emb = tensors.get("model.embed_tokens.weight")!;
  assert.deepEqual(emb.shape, [3, 4]);
  assert.deepEqual(
    [...(emb.data as Float32Array)],
    Array.from({ length: 12 }, (_, i) => i / 8 - 0.5),
  );
  assert.deepEqual([...f16ToF32(tensors.get("half")!.data as Uint16Array)], [0, 0.25, 0.5, 0.75, 1]);
  assert.deepEqual([...(tensors.get("ids")!.data as BigInt64Array)], [-1n, 2n ** 40n]);
  assert.deepEqual([...(tensors.get("mask")!.data as Uint8Array)], [1, 0, 1]);
  assert.equal(tensors.get("mask")!.dtype, "BOOL");
  assert.deepEqual([...(tensors.get("bytes")!.data as Uint8Array)], [0, 255]);
  assert.deepEqual([...(tensors.get("ints")!.data as Int32Array)], [1, -2, 3, 4]);
  assert.deepEqual(tensors.get("empty")!.shape, [0, 3]);
});
