// GGUF v3 (llama.cpp's model file) writer and reader.
// Layout, all little-endian: "GGUF" | u32 version | u64 tensor count | u64 kv count | kvs | tensor infos |
// padding to `general.alignment` (32) | data, each tensor starting on an aligned offset.
// A string is u64 length + UTF-8 bytes. A tensor info is name, u32 n_dims, u64 ne[n_dims] (ne[0] is the
// fastest-varying dimension, so ne = row-major shape reversed), u32 ggml type, u64 offset into data.
import { readFile } from "node:fs/promises";
import { writeAll, writeFileAtomic } from "./atomic.js";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Metadata value types, numbered as in gguf.h. */
const VT = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;
export type GgufNumberType = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64";
export type GgufBigType = "u64" | "i64";
export type GgufScalarType = GgufNumberType | GgufBigType | "bool" | "string";

export type GgufValue =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigType; value: bigint }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "array"; itemType: GgufNumberType; value: number[] }
  | { type: "array"; itemType: GgufBigType; value: bigint[] }
  | { type: "array"; itemType: "bool"; value: boolean[] }
  | { type: "array"; itemType: "string"; value: string[] };

/** ggml tensor types we write (numbers from ggml.h). */
export const GGML_TYPE = { F32: 0, F16: 1, BF16: 30 } as const;
export type GgmlType = keyof typeof GGML_TYPE;
const GGML_TYPE_SIZE: Record<GgmlType, number> = { F32: 4, F16: 2, BF16: 2 };

export interface GgufTensor {
  name: string;
  type: GgmlType;
  /** Row-major shape (as in safetensors / PyTorch); written reversed as ggml's ne. */
  shape: number[];
  /** F32: Float32Array; F16/BF16: Uint16Array of bit patterns. */
  data: Float32Array | Uint16Array;
}

export interface GgufFile {
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensor[];
  alignment: number;
}

// ---------------------------------------------------------------------------------------------------------
// Writing

class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.byteLength) return;
    let cap = this.buf.byteLength * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.reserve(1);
    this.view.setUint8(this.len, v);
    this.len += 1;
  }
  i8(v: number): void {
    this.reserve(1);
    this.view.setInt8(this.len, v);
    this.len += 1;
  }
  u16(v: number): void {
    this.reserve(2);
    this.view.setUint16(this.len, v, true);
    this.len += 2;
  }
  i16(v: number): void {
    this.reserve(2);
    this.view.setInt16(this.len, v, true);
    this.len += 2;
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.len, v, true);
    this.len += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.len, v, true);
    this.len += 4;
  }
  f32(v: number): void {
    this.reserve(4);
    this.view.setFloat32(this.len, v, true);
    this.len += 4;
  }
  f64(v: number): void {
    this.reserve(8);
    this.view.setFloat64(this.len, v, true);
    this.len += 8;
  }
  u64(v: number | bigint): void {
    this.reserve(8);
    this.view.setBigUint64(this.len, BigInt(v), true);
    this.len += 8;
  }
  i64(v: bigint): void {
    this.reserve(8);
    this.view.setBigInt64(this.len, v, true);
    this.len += 8;
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.byteLength);
    this.buf.set(b, this.len);
    this.len += b.byteLength;
  }
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.byteLength);
    this.bytes(b);
  }
  pad(align: number): void {
    const n = (align - (this.len % align)) % align;
    this.reserve(n);
    this.buf.fill(0, this.len, this.len + n);
    this.len += n;
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

function checkNumber(key: string, type: GgufNumberType, v: number): void {
  const ranges: Partial<Record<GgufNumberType, [number, number]>> = {
    u8: [0, 255],
    i8: [-128, 127],
    u16: [0, 65535],
    i16: [-32768, 32767],
    u32: [0, 0xffffffff],
    i32: [-0x80000000, 0x7fffffff],
  };
  const r = ranges[type];
  if (r !== undefined && (!Number.isInteger(v) || v < r[0] || v > r[1]))
    throw new Error(`gguf: metadata "${key}": ${v} is not a valid ${type}`);
  if (typeof v !== "number") throw new Error(`gguf: metadata "${key}": ${String(v)} is not a number`);
}

function writeScalar(
  w: ByteWriter,
  key: string,
  type: GgufScalarType,
  v: number | bigint | boolean | string,
): void {
  switch (type) {
    case "u8":
    case "i8":
    case "u16":
    case "i16":
    case "u32":
    case "i32":
    case "f32":
    case "f64":
      checkNumber(key, type, v as number);
      w[type](v as number);
      return;
    case "u64":
      w.u64(v as bigint);
      return;
    case "i64":
      w.i64(v as bigint);
      return;
    case "bool":
      if (typeof v !== "boolean") throw new Error(`gguf: metadata "${key}": ${String(v)} is not a bool`);
      w.u8(v ? 1 : 0);
      return;
    case "string":
      if (typeof v !== "string") throw new Error(`gguf: metadata "${key}": ${String(v)} is not a string`);
      w.str(v);
      return;
    default:
      throw new Error(`gguf: metadata "${key}": unknown type ${String(type satisfies never)}`);
  }
}

function writeKv(w: ByteWriter, key: string, v: GgufValue): void {
  w.str(key);
  w.u32(VT[v.type]);
  if (v.type === "array") {
    w.u32(VT[v.itemType]);
    w.u64(v.value.length);
    for (const x of v.value) writeScalar(w, key, v.itemType, x);
  } else {
    writeScalar(w, key, v.type, v.value);
  }
}

function validateTensor(t: GgufTensor): void {
  const where = `gguf: tensor "${t.name}"`;
  if (!(t.type in GGML_TYPE)) throw new Error(`${where}: unsupported type ${String(t.type)}`);
  if (t.shape.length < 1 || t.shape.length > 4 || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 1)) {
    throw new Error(`${where}: shape [${t.shape.join(", ")}] must have 1 to 4 positive dimensions`);
  }
  const wantCtor = t.type === "F32" ? Float32Array : Uint16Array;
  if (!(t.data instanceof wantCtor))
    throw new Error(`${where}: type ${t.type} needs a ${wantCtor.name}, got ${t.data.constructor.name}`);
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== n)
    throw new Error(
      `${where}: shape [${t.shape.join(", ")}] has ${n} elements but data has ${t.data.length}`,
    );
}

/**
 * Encode header, metadata and tensor infos; returns the bytes (already padded to the alignment) and each
 * tensor's offset in the data region. general.alignment, when present in metadata, sets the alignment.
 */
export function encodeGgufHeader(
  metadata: Map<string, GgufValue>,
  tensors: GgufTensor[],
): { header: Uint8Array; offsets: number[]; alignment: number } {
  const names = new Set<string>();
  for (const t of tensors) {
    validateTensor(t);
    if (names.has(t.name)) throw new Error(`gguf: duplicate tensor name "${t.name}"`);
    names.add(t.name);
  }
  const alignKv = metadata.get("general.alignment");
  const alignment =
    alignKv === undefined ? GGUF_DEFAULT_ALIGNMENT : alignKv.type === "u32" ? alignKv.value : NaN;
  if (!Number.isInteger(alignment) || alignment < 1 || (alignment & (alignment - 1)) !== 0) {
    throw new Error(`gguf: general.alignment must be a u32 power of two`);
  }
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(metadata.size);
  for (const [k, v] of metadata) writeKv(w, k, v);
  const offsets: number[] = [];
  let off = 0;
  for (const t of tensors) {
    w.str(t.name);
    w.u32(t.shape.length);
    for (let i = t.shape.length - 1; i >= 0; i--) w.u64(t.shape[i]);
    w.u32(GGML_TYPE[t.type]);
    w.u64(off);
    offsets.push(off);
    off += t.data.byteLength;
    off += (alignment - (off % alignment)) % alignment;
  }
  w.pad(alignment);
  return { header: w.result(), offsets, alignment };
}

/** Write a GGUF file: streamed to a temp file beside path, fsynced, renamed into place (io/atomic.ts). */
export async function writeGguf(
  path: string,
  metadata: Map<string, GgufValue>,
  tensors: GgufTensor[],
): Promise<void> {
  const { header, offsets, alignment } = encodeGgufHeader(metadata, tensors);
  await writeFileAtomic(path, "gguf", async (fh) => {
    await writeAll(fh, header);
    const zeros = new Uint8Array(alignment);
    let pos = 0;
    for (let i = 0; i < tensors.length; i++) {
      if (offsets[i] > pos) await writeAll(fh, zeros.subarray(0, offsets[i] - pos));
      const d = tensors[i].data;
      await writeAll(fh, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
      pos = offsets[i] + d.byteLength;
    }
    const tail = (alignment - (pos % alignment)) % alignment;
    if (tail > 0) await writeAll(fh, zeros.subarray(0, tail));
  });
}

// ---------------------------------------------------------------------------------------------------------
// Reading (whole file in memory: enough to validate our own files and inspect small ones)

class ByteReader {
  private readonly view: DataView;
  pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly file: string,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  need(n: number, what: string): void {
    if (this.pos + n > this.buf.byteLength)
      throw new Error(`gguf ${this.file}: truncated while reading ${what} at byte ${this.pos}`);
  }
  u8(): number {
    this.need(1, "u8");
    return this.view.getUint8(this.pos++);
  }
  i8(): number {
    this.need(1, "i8");
    return this.view.getInt8(this.pos++);
  }
  u16(): number {
    this.need(2, "u16");
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  i16(): number {
    this.need(2, "i16");
    const v = this.view.getInt16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4, "u32");
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32(): number {
    this.need(4, "i32");
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f32(): number {
    this.need(4, "f32");
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64(): number {
    this.need(8, "f64");
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  u64(): bigint {
    this.need(8, "u64");
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  i64(): bigint {
    this.need(8, "i64");
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }
  size(what: string): number {
    const v = this.u64();
    if (v > BigInt(this.buf.byteLength))
      throw new Error(`gguf ${this.file}: ${what} ${v} exceeds the file size`);
    return Number(v);
  }
  /** A string; `what` names the field in errors (a key, a value, a tensor name). */
  str(what: string): string {
    const n = this.size(`length of ${what}`);
    this.need(n, what);
    let s: string;
    try {
      s = new TextDecoder("utf-8", { fatal: true }).decode(this.buf.subarray(this.pos, this.pos + n));
    } catch {
      throw new Error(`gguf ${this.file}: ${what} at byte ${this.pos} is not valid UTF-8`);
    }
    this.pos += n;
    return s;
  }
}

const TYPE_NAMES = Object.fromEntries(Object.entries(VT).map(([k, v]) => [v, k])) as Record<
  number,
  keyof typeof VT
>;

function readScalar(r: ByteReader, type: GgufScalarType, what: string): number | bigint | boolean | string {
  switch (type) {
    case "bool":
      return r.u8() !== 0;
    case "string":
      return r.str(what);
    default:
      return r[type]();
  }
}

function readValue(r: ByteReader, file: string, key: string): GgufValue {
  const t = TYPE_NAMES[r.u32()];
  if (t === undefined) throw new Error(`gguf ${file}: metadata "${key}" has an unknown value type`);
  if (t !== "array")
    return { type: t, value: readScalar(r, t, `the value of metadata "${key}"`) } as GgufValue;
  const it = TYPE_NAMES[r.u32()];
  if (it === undefined || it === "array")
    throw new Error(`gguf ${file}: metadata "${key}" has an unsupported array item type`);
  const n = r.size(`array length of "${key}"`);
  const value: (number | bigint | boolean | string)[] = [];
  for (let i = 0; i < n; i++) value.push(readScalar(r, it, `item ${i} of metadata "${key}"`));
  return { type: "array", itemType: it, value } as GgufValue;
}

export function decodeGguf(buf: Uint8Array, file = "<buffer>"): GgufFile {
  const r = new ByteReader(buf, file);
  if (buf.byteLength < 24 || r.u32() !== GGUF_MAGIC)
    throw new Error(`gguf ${file}: not a GGUF file (bad magic)`);
  const version = r.u32();
  if (version !== 2 && version !== 3) throw new Error(`gguf ${file}: unsupported version ${version}`);
  const nTensors = r.size("tensor count");
  const nKv = r.size("metadata count");
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const key = r.str(`metadata key ${i}`);
    if (metadata.has(key)) throw new Error(`gguf ${file}: duplicate metadata key "${key}"`);
    metadata.set(key, readValue(r, file, key));
  }
  const align = metadata.get("general.alignment");
  if (
    align !== undefined &&
    (align.type !== "u32" || align.value < 1 || (align.value & (align.value - 1)) !== 0)
  )
    throw new Error(
      `gguf ${file}: general.alignment must be a u32 power of two, got ${align.type} ${String(align.value)}`,
    );
  const alignment = align !== undefined ? (align.value as number) : GGUF_DEFAULT_ALIGNMENT;
  const names = new Set<string>();
  const infos: { name: string; type: GgmlType; shape: number[]; offset: number }[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = r.str(`name of tensor ${i}`);
    if (names.has(name)) throw new Error(`gguf ${file}: duplicate tensor name "${name}"`);
    names.add(name);
    const nd = r.u32();
    if (nd < 1 || nd > 4) throw new Error(`gguf ${file}: tensor "${name}" has ${nd} dimensions`);
    const ne: number[] = [];
    for (let d = 0; d < nd; d++) ne.push(r.size(`dimension of "${name}"`));
    if (ne.some((d) => d < 1))
      throw new Error(`gguf ${file}: tensor "${name}" has an empty dimension [${ne.join(", ")}]`);
    const tcode = r.u32();
    const type = (Object.keys(GGML_TYPE) as GgmlType[]).find((k) => GGML_TYPE[k] === tcode);
    if (type === undefined)
      throw new Error(
        `gguf ${file}: tensor "${name}" has ggml type ${tcode}, which this reader does not decode`,
      );
    const offset = r.size(`offset of "${name}"`);
    if (offset % alignment !== 0)
      throw new Error(`gguf ${file}: tensor "${name}" offset ${offset} is not ${alignment}-aligned`);
    infos.push({ name, type, shape: ne.reverse(), offset });
  }
  const dataStart = Math.ceil(r.pos / alignment) * alignment;
  const spans = infos
    .map((t) => ({ t, end: t.offset + t.shape.reduce((a, b) => a * b, 1) * GGML_TYPE_SIZE[t.type] }))
    .sort((a, b) => a.t.offset - b.t.offset);
  for (let i = 1; i < spans.length; i++)
    if (spans[i].t.offset < spans[i - 1].end)
      throw new Error(
        `gguf ${file}: tensor "${spans[i].t.name}" (offset ${spans[i].t.offset}) overlaps tensor "${spans[i - 1].t.name}" (ends at ${spans[i - 1].end})`,
      );
  const tensors: GgufTensor[] = infos.map((info) => {
    const n = info.shape.reduce((a, b) => a * b, 1);
    const bytes = n * GGML_TYPE_SIZE[info.type];
    const begin = dataStart + info.offset;
    if (begin + bytes > buf.byteLength)
      throw new Error(`gguf ${file}: tensor "${info.name}" runs past the end of the file`);
    const copy = buf.slice(begin, begin + bytes);
    const data =
      info.type === "F32" ? new Float32Array(copy.buffer, 0, n) : new Uint16Array(copy.buffer, 0, n);
    return { name: info.name, type: info.type, shape: info.shape, data };
  });
  return { version, metadata, tensors, alignment };
}

export async function readGguf(path: string): Promise<GgufFile> {
  return decodeGguf(new Uint8Array(await readFile(path)), path);
}
