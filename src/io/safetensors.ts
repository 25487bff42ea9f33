// Safetensors (https://github.com/huggingface/safetensors) reader and writer.
// Layout: u64 LE header length N | N bytes of JSON header | data region. The header maps tensor names to
// { dtype, shape, data_offsets: [begin, end) relative to the data region } plus an optional
// "__metadata__" string map. Everything is little-endian; f16/bf16 data stays as raw Uint16 bit patterns.
import { open, type FileHandle } from "node:fs/promises";
import { endianness } from "node:os";
import { writeAll, writeFileAtomic } from "./atomic.js";
import { bf16ToF32, f16ToF32 } from "./half.js";

export { tempSibling } from "./atomic.js";

export type SafetensorsDtype = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

/** The typed array holding each dtype's elements (f16/bf16 as raw bit patterns). */
export interface DtypeArrays {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I64: BigInt64Array;
  I32: Int32Array;
  I16: Int16Array;
  I8: Int8Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
}

export type TensorData = DtypeArrays[SafetensorsDtype];

/** One tensor: dtype, row-major shape, and its elements. */
export interface StTensor<D extends SafetensorsDtype = SafetensorsDtype> {
  dtype: D;
  shape: number[];
  data: DtypeArrays[D];
}

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** [begin, end) in bytes, relative to the start of the data region. */
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  /** Tensor infos in data order (sorted by begin offset). */
  tensors: TensorInfo[];
  metadata: Record<string, string>;
  /** Absolute file offset of the data region (8 + header length). */
  dataStart: number;
}

/** Headers larger than this are rejected (as the safetensors library does), so a corrupt length cannot exhaust memory. */
export const MAX_HEADER_BYTES = 100_000_000;

interface DtypeSpec {
  size: number;
  make: (buf: ArrayBuffer, byteOffset: number, length: number) => TensorData;
  ctor: { name: string };
}

const DTYPES: Record<SafetensorsDtype, DtypeSpec> = {
  F64: { size: 8, make: (b, o, n) => new Float64Array(b, o, n), ctor: Float64Array },
  F32: { size: 4, make: (b, o, n) => new Float32Array(b, o, n), ctor: Float32Array },
  F16: { size: 2, make: (b, o, n) => new Uint16Array(b, o, n), ctor: Uint16Array },
  BF16: { size: 2, make: (b, o, n) => new Uint16Array(b, o, n), ctor: Uint16Array },
  I64: { size: 8, make: (b, o, n) => new BigInt64Array(b, o, n), ctor: BigInt64Array },
  I32: { size: 4, make: (b, o, n) => new Int32Array(b, o, n), ctor: Int32Array },
  I16: { size: 2, make: (b, o, n) => new Int16Array(b, o, n), ctor: Int16Array },
  I8: { size: 1, make: (b, o, n) => new Int8Array(b, o, n), ctor: Int8Array },
  U8: { size: 1, make: (b, o, n) => new Uint8Array(b, o, n), ctor: Uint8Array },
  BOOL: { size: 1, make: (b, o, n) => new Uint8Array(b, o, n), ctor: Uint8Array },
};

export function dtypeSize(dtype: SafetensorsDtype): number {
  return DTYPES[dtype].size;
}

export function isSafetensorsDtype(s: unknown): s is SafetensorsDtype {
  return typeof s === "string" && Object.prototype.hasOwnProperty.call(DTYPES, s);
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * A tensor's values as float32 (what every module holds): F32 as stored, F16 / BF16 / F64 converted
 * exactly or rounded to nearest; integer and bool tensors are refused. `where` names the file and tensor.
 */
export function toFloat32(t: StTensor, where: string): Float32Array {
  switch (t.dtype) {
    case "F32":
      return t.data as Float32Array;
    case "F16":
      return f16ToF32(t.data as Uint16Array);
    case "BF16":
      return bf16ToF32(t.data as Uint16Array);
    case "F64":
      return Float32Array.from(t.data as Float64Array);
    default:
      throw new Error(`${where}: dtype ${t.dtype} cannot hold weights (expected F32, F16, BF16 or F64)`);
  }
}

function assertLittleEndian(): void {
  if (endianness() !== "LE") throw new Error("safetensors: only little-endian hosts are supported");
}

// ---------------------------------------------------------------------------------------------------------
// Header validation

/**
 * Parse and validate a header's JSON text against the file size. Rules (as the safetensors library's):
 * a JSON object; each entry has a known dtype, a shape of non-negative integers and data_offsets
 * [begin, end] with end - begin = numel * dtype size; sorted by offset the entries tile the data region
 * exactly (first begin 0, no gaps, no overlaps, last end = data length); "__metadata__" is a string map.
 */
export function parseHeader(
  text: string,
  headerLen: number,
  fileSize: number,
  file: string,
): SafetensorsHeader {
  const fail = (msg: string): never => {
    throw new Error(`safetensors ${file}: ${msg}`);
  };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) fail("header is not a JSON object");
  const dataStart = 8 + headerLen;
  const dataLen = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (entry === null || typeof entry !== "object" || Array.isArray(entry))
        fail(`__metadata__ is not an object`);
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__["${k}"] is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const where = `tensor "${name}"`;
    if (entry === null || typeof entry !== "object" || Array.isArray(entry))
      fail(`${where}: entry is not an object`);
    const e = entry as Record<string, unknown>;
    for (const key of Object.keys(e)) {
      if (key !== "dtype" && key !== "shape" && key !== "data_offsets")
        fail(`${where}: unknown field "${key}"`);
    }
    if (!isSafetensorsDtype(e.dtype)) fail(`${where}: unknown dtype ${JSON.stringify(e.dtype)}`);
    const dtype = e.dtype as SafetensorsDtype;
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      fail(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    const offs = e.data_offsets;
    if (
      !Array.isArray(offs) ||
      offs.length !== 2 ||
      !offs.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)
    ) {
      fail(`${where}: data_offsets ${JSON.stringify(offs)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offs as [number, number];
    if (end < begin) fail(`${where}: data_offsets [${begin}, ${end}] end before begin`);
    if (end > dataLen)
      fail(
        `${where}: data_offsets [${begin}, ${end}] run past the data region of ${dataLen} bytes (file truncated?)`,
      );
    const n = numel(shape as number[]);
    const want = n * DTYPES[dtype].size;
    if (!Number.isSafeInteger(want) || end - begin !== want) {
      fail(
        `${where}: ${dtype} shape [${(shape as number[]).join(", ")}] needs ${want} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`,
      );
    }
    tensors.push({ name, dtype, shape: (shape as number[]).slice(), dataOffsets: [begin, end] });
  }
  tensors.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let pos = 0;
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    const [begin, end] = t.dataOffsets;
    if (begin < pos)
      fail(
        `tensor "${t.name}": data_offsets [${begin}, ${end}] overlap tensor "${tensors[i - 1].name}" (ends at ${pos})`,
      );
    if (begin > pos)
      fail(
        `tensor "${t.name}": gap in the data region before offset ${begin} (previous data ends at ${pos})`,
      );
    pos = end;
  }
  if (pos !== dataLen) {
    fail(
      `data region is ${dataLen} bytes but tensors cover ${pos} (${pos < dataLen ? "trailing bytes" : "file truncated"})`,
    );
  }
  return { tensors, metadata, dataStart };
}

/** Read and validate the 8-byte length and header of a safetensors file held in memory. */
export function parseSafetensorsHeader(buf: Uint8Array, file = "<buffer>"): SafetensorsHeader {
  if (buf.byteLength < 8)
    throw new Error(
      `safetensors ${file}: file is ${buf.byteLength} bytes, shorter than the 8-byte header length`,
    );
  const headerLen = readHeaderLength(buf, file, buf.byteLength);
  const text = decodeHeaderText(buf.subarray(8, 8 + headerLen), file);
  return parseHeader(text, headerLen, buf.byteLength, file);
}

function readHeaderLength(first8: Uint8Array, file: string, fileSize: number): number {
  const big = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (big > BigInt(MAX_HEADER_BYTES))
    throw new Error(
      `safetensors ${file}: header length ${big} exceeds the limit of ${MAX_HEADER_BYTES} bytes`,
    );
  const n = Number(big);
  if (8 + n > fileSize)
    throw new Error(
      `safetensors ${file}: header length ${n} runs past the end of the ${fileSize}-byte file (truncated?)`,
    );
  if (n < 2) throw new Error(`safetensors ${file}: header length ${n} is too small to hold a JSON object`);
  return n;
}

function decodeHeaderText(bytes: Uint8Array, file: string): string {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`safetensors ${file}: header is not valid UTF-8`);
  }
  if (!text.startsWith("{")) throw new Error(`safetensors ${file}: header does not start with '{'`);
  return text;
}

// ---------------------------------------------------------------------------------------------------------
// Reading

function viewOrCopy(info: TensorInfo, bytes: Uint8Array): StTensor {
  const spec = DTYPES[info.dtype];
  const n = numel(info.shape);
  // Zero-copy when aligned for the element type; otherwise copy into a fresh (aligned) buffer.
  if (bytes.byteOffset % spec.size === 0) {
    return {
      dtype: info.dtype,
      shape: info.shape.slice(),
      data: spec.make(bytes.buffer as ArrayBuffer, bytes.byteOffset, n),
    } as StTensor;
  }
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return { dtype: info.dtype, shape: info.shape.slice(), data: spec.make(copy.buffer, 0, n) } as StTensor;
}

/** Decode a whole safetensors file held in memory. Tensors may be views into buf. */
export function decodeSafetensors(
  buf: Uint8Array,
  file = "<buffer>",
): { tensors: Map<string, StTensor>; metadata: Record<string, string> } {
  assertLittleEndian();
  const header = parseSafetensorsHeader(buf, file);
  const tensors = new Map<string, StTensor>();
  for (const info of header.tensors) {
    const [b, e] = info.dataOffsets;
    tensors.set(info.name, viewOrCopy(info, buf.subarray(header.dataStart + b, header.dataStart + e)));
  }
  return { tensors, metadata: header.metadata };
}

/**
 * A safetensors file opened lazily: the header is read and validated on open, each tensor is read by a
 * positioned read on demand (for files too large to hold twice in memory). Close it when done.
 */
export class SafetensorsFile {
  private constructor(
    readonly path: string,
    readonly header: SafetensorsHeader,
    private fh: FileHandle | null,
    private readonly byName: Map<string, TensorInfo>,
  ) {}

  static async open(path: string): Promise<SafetensorsFile> {
    assertLittleEndian();
    const fh = await open(path, "r");
    try {
      const size = (await fh.stat()).size;
      if (size < 8)
        throw new Error(`safetensors ${path}: file is ${size} bytes, shorter than the 8-byte header length`);
      const first8 = new Uint8Array(8);
      await readExactly(fh, first8, 0, path);
      const headerLen = readHeaderLength(first8, path, size);
      const hbuf = new Uint8Array(headerLen);
      await readExactly(fh, hbuf, 8, path);
      const header = parseHeader(decodeHeaderText(hbuf, path), headerLen, size, path);
      return new SafetensorsFile(path, header, fh, new Map(header.tensors.map((t) => [t.name, t])));
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  names(): string[] {
    return this.header.tensors.map((t) => t.name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.byName.get(name);
    if (t === undefined) throw new Error(`safetensors ${this.path}: no tensor named "${name}"`);
    return t;
  }

  get metadata(): Record<string, string> {
    return this.header.metadata;
  }

  async read(name: string): Promise<StTensor> {
    if (this.fh === null) throw new Error(`safetensors ${this.path}: file is closed`);
    const info = this.info(name);
    const [b, e] = info.dataOffsets;
    const bytes = new Uint8Array(e - b);
    await readExactly(this.fh, bytes, this.header.dataStart + b, this.path);
    return viewOrCopy(info, bytes);
  }

  async readAll(): Promise<Map<string, StTensor>> {
    const out = new Map<string, StTensor>();
    for (const t of this.header.tensors) out.set(t.name, await this.read(t.name));
    return out;
  }

  async close(): Promise<void> {
    if (this.fh !== null) await this.fh.close();
    this.fh = null;
  }
}

async function readExactly(fh: FileHandle, into: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < into.byteLength) {
    // Positioned reads of at most 1 GiB each (a single read call caps near 2 GiB).
    const len = Math.min(into.byteLength - done, 1 << 30);
    const { bytesRead } = await fh.read(into, done, len, position + done);
    if (bytesRead === 0)
      throw new Error(`safetensors ${file}: unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
}

/** Read a whole file: header validated, then all tensors. */
export async function readSafetensors(
  path: string,
): Promise<{ tensors: Map<string, StTensor>; metadata: Record<string, string> }> {
  const f = await SafetensorsFile.open(path);
  try {
    return { tensors: await f.readAll(), metadata: f.metadata };
  } finally {
    await f.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Writing

export type TensorMap = Map<string, StTensor> | Record<string, StTensor>;

function entriesOf(tensors: TensorMap): [string, StTensor][] {
  return tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
}

/** Check one tensor before writing: known dtype, matching array type, shape and element count. */
export function validateTensor(name: string, t: StTensor, file = "<output>"): void {
  const where = `safetensors ${file}: tensor "${name}"`;
  if (name === "__metadata__") throw new Error(`${where}: the name is reserved`);
  if (!isSafetensorsDtype(t.dtype)) throw new Error(`${where}: unknown dtype ${JSON.stringify(t.dtype)}`);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`${where}: shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`);
  }
  const spec = DTYPES[t.dtype];
  if (!(t.data instanceof (spec.ctor as unknown as new (...a: never[]) => TensorData))) {
    throw new Error(
      `${where}: dtype ${t.dtype} needs a ${spec.ctor.name}, got ${(t.data as object)?.constructor?.name ?? typeof t.data}`,
    );
  }
  if (t.data.length !== numel(t.shape)) {
    throw new Error(
      `${where}: shape [${t.shape.join(", ")}] has ${numel(t.shape)} elements but data has ${t.data.length}`,
    );
  }
}

/**
 * Build the header bytes for tensors written in sorted-name order. Deterministic: same tensors, same bytes.
 * Padded with spaces so the data region starts on an 8-byte boundary.
 */
export function buildHeader(tensors: [string, StTensor][], metadata?: Record<string, string>): Uint8Array {
  const obj: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    const m: Record<string, string> = {};
    for (const k of Object.keys(metadata).sort()) {
      if (typeof metadata[k] !== "string")
        throw new Error(`safetensors: __metadata__["${k}"] is not a string`);
      m[k] = metadata[k];
    }
    obj.__metadata__ = m;
  }
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = t.data.byteLength;
    obj[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(obj));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

function sortedEntries(tensors: TensorMap, file: string): [string, StTensor][] {
  const entries = entriesOf(tensors).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (const [name, t] of entries) validateTensor(name, t, file);
  return entries;
}

/** Encode tensors to one in-memory buffer (small files, tests). */
export function encodeSafetensors(tensors: TensorMap, metadata?: Record<string, string>): Uint8Array {
  assertLittleEndian();
  const entries = sortedEntries(tensors, "<buffer>");
  const header = buildHeader(entries, metadata);
  let total = header.byteLength;
  for (const [, t] of entries) total += t.data.byteLength;
  const out = new Uint8Array(total);
  out.set(header, 0);
  let pos = header.byteLength;
  for (const [, t] of entries) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}

/**
 * Write tensors to path: validated first, streamed to a temp file beside it, fsynced, then renamed over
 * path (io/atomic.ts), so readers never see a half-written file. Tensor data is written without copies.
 */
export async function writeSafetensors(
  path: string,
  tensors: TensorMap,
  metadata?: Record<string, string>,
): Promise<void> {
  assertLittleEndian();
  const entries = sortedEntries(tensors, path);
  const header = buildHeader(entries, metadata);
  await writeFileAtomic(path, "safetensors", async (fh) => {
    await writeAll(fh, header);
    for (const [, t] of entries)
      await writeAll(fh, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  });
}
