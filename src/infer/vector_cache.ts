// Chunk-vector cache: the encoder's vectors for every passage, computed at indexing time and stored next
// to the passages, so the encoder is off the request path. An entry is keyed by the encoder's weights, the
// passage's token ids and k, so a retrained encoder or another chunk size never reads stale vectors.
// Storage: one small safetensors file per passage (F32, or BF16 to halve the bytes).
import { createHash } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { kernels } from "../engine/kernels/index.js";
import { Tensor } from "../engine/tensor.js";
import { readSafetensors, writeSafetensors, type StTensor } from "../io/safetensors.js";
import type { Module } from "../nn/module.js";

export type VectorDtype = "F32" | "BF16";

/** A stable id of a module's weights (sha256 over names, shapes and bytes). */
export function weightsId(m: Module): string {
  const h = createHash("sha256");
  for (const [name, p] of m.namedParameters()) {
    h.update(`${name}:${p.shape.join("x")};`);
    h.update(new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength));
  }
  return h.digest("hex").slice(0, 16);
}

export class ChunkVectorCache {
  private readonly memory = new Map<string, Tensor>();

  /**
   * @param dir folder for the vector files (created on first write); null keeps vectors in memory only
   * @param encoderId weightsId(encoder) of the encoder that makes the vectors
   * @param maxMemoryEntries passages kept in memory, least recently used dropped first (a long-running
   *   server would otherwise grow without bound; the files on disk stay)
   * @param maxMemoryBytes bytes of vectors kept in memory (entries differ in size by orders of magnitude,
   *   so a count alone does not bound memory); least recently used dropped first
   */
  constructor(
    readonly dir: string | null,
    readonly encoderId: string,
    readonly k: number,
    readonly dtype: VectorDtype = "F32",
    readonly maxMemoryEntries = 10_000,
    readonly maxMemoryBytes = 256 * 2 ** 20,
  ) {
    for (const [name, v] of [
      ["maxMemoryEntries", maxMemoryEntries],
      ["maxMemoryBytes", maxMemoryBytes],
    ] as const)
      if (!Number.isInteger(v) || v < 1)
        throw new Error(`ChunkVectorCache: ${name} must be a positive integer, got ${v}`);
  }

  private bytes = 0;

  /** Memory entries in least-recently-used order (a Map keeps insertion order). */
  private remember(key: string, t: Tensor): void {
    const prev = this.memory.get(key);
    if (prev !== undefined) this.bytes -= prev.data.byteLength;
    this.memory.delete(key);
    this.memory.set(key, t);
    this.bytes += t.data.byteLength;
    while (
      this.memory.size > this.maxMemoryEntries ||
      (this.bytes > this.maxMemoryBytes && this.memory.size > 1)
    ) {
      const [oldest, v] = this.memory.entries().next().value as [string, Tensor];
      this.memory.delete(oldest);
      this.bytes -= v.data.byteLength;
    }
  }

  /** Bytes of vectors held in memory. */
  get memoryBytes(): number {
    return this.bytes;
  }

  key(passageIds: ArrayLike<number>): string {
    const h = createHash("sha256");
    h.update(`${this.encoderId}|k=${this.k}|`);
    const ids = Int32Array.from(passageIds as ArrayLike<number>);
    h.update(new Uint8Array(ids.buffer));
    return h.digest("hex").slice(0, 32);
  }

  private path(key: string): string {
    return join(this.dir as string, `${key}.safetensors`);
  }

  /** Cached vectors [L, Ce] for a passage, or null. */
  async get(passageIds: ArrayLike<number>): Promise<Tensor | null> {
    const key = this.key(passageIds);
    const hit = this.memory.get(key);
    if (hit !== undefined) {
      this.remember(key, hit);
      return hit;
    }
    if (this.dir === null || !existsSync(this.path(key))) return null;
    const { tensors } = await readSafetensors(this.path(key));
    const t = tensors.get("vectors");
    const rows = Math.ceil(passageIds.length / this.k);
    if (t === undefined || t.shape.length !== 2 || t.shape[0] !== rows)
      throw new Error(
        `ChunkVectorCache: ${this.path(key)} has no "vectors" tensor of ${rows} rows (one per chunk of ${this.k})`,
      );
    let data: Float32Array;
    if (t.dtype === "F32") data = (t.data as Float32Array).slice();
    else if (t.dtype === "BF16") {
      data = new Float32Array(t.data.length);
      kernels.gemm.bf16ToF32(t.data as Uint16Array, data);
    } else throw new Error(`ChunkVectorCache: ${this.path(key)} holds ${t.dtype}, expected F32 or BF16`);
    const bad = kernels.pointwise.firstNonFinite(data);
    if (bad >= 0) throw new Error(`ChunkVectorCache: ${this.path(key)} holds ${data[bad]} at index ${bad}`);
    const out = new Tensor(data, t.shape);
    this.remember(key, out);
    return out;
  }

  /** Store vectors for a passage (in memory, and on disk when the cache has a folder). */
  async put(passageIds: ArrayLike<number>, vectors: Tensor): Promise<void> {
    const key = this.key(passageIds);
    // Keep what a later read returns: bf16-rounded values when stored as BF16.
    let stored: StTensor;
    let kept = vectors;
    if (this.dtype === "BF16") {
      const bits = new Uint16Array(vectors.size);
      kernels.gemm.f32ToBf16(vectors.data, bits);
      stored = { dtype: "BF16", shape: [...vectors.shape], data: bits };
      const back = new Float32Array(vectors.size);
      kernels.gemm.bf16ToF32(bits, back);
      kept = new Tensor(back, vectors.shape);
    } else stored = { dtype: "F32", shape: [...vectors.shape], data: vectors.data.slice() };
    this.remember(key, kept);
    if (this.dir !== null) {
      mkdirSync(this.dir, { recursive: true });
      await writeSafetensors(
        this.path(key),
        { vectors: stored },
        { encoder: this.encoderId, k: String(this.k) },
      );
    }
  }

  get size(): number {
    return this.memory.size;
  }
}
