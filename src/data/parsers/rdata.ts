// R serialization (XDR, format versions 2 and 3) and lazy-load databases (package data/Rdata.rdx + .rdb).
// The .rdx is a gzipped serialized list(variables = list(name = c(offset, length)), …); each .rdb blob is a
// 4-byte big-endian length followed by a zlib stream holding one serialized object.
import { gunzipSync, inflateSync } from "node:zlib";

export type RValue =
  | { kind: "null" }
  | { kind: "sym"; name: string }
  | {
      kind: "vector";
      type: string;
      values: (string | number | boolean | null | RValue)[];
      attributes: Map<string, RValue>;
    }
  | { kind: "pairlist"; items: { tag: string | null; value: RValue }[] }
  | { kind: "opaque"; type: number }; // environments, closures, bytecode: read past, not interpreted

const NIL: RValue = { kind: "null" };
const VECTOR_TYPES: Record<number, string> = {
  10: "lgl",
  13: "int",
  14: "real",
  15: "cplx",
  16: "str",
  19: "list",
  20: "expr",
  24: "raw",
};

class Reader {
  off = 0;
  refs: RValue[] = [];
  constructor(private buf: Buffer) {}
  int(): number {
    const v = this.buf.readInt32BE(this.off);
    this.off += 4;
    return v;
  }
  double(): number {
    const v = this.buf.readDoubleBE(this.off);
    this.off += 8;
    return v;
  }
  bytes(n: number): Buffer {
    const b = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return b;
  }
  length(): number {
    const n = this.int();
    return n === -1 ? this.int() * 4294967296 + (this.int() >>> 0) : n;
  }
  charsxp(): string | null {
    const n = this.int();
    return n === -1 ? null : this.bytes(n).toString("utf8"); // latin1 strings are rare in package data
  }

  item(): RValue {
    const flags = this.int();
    const type = flags & 0xff;
    const hasAttr = (flags & (1 << 9)) !== 0;
    const hasTag = (flags & (1 << 10)) !== 0;
    switch (type) {
      case 254: // NILVALUE
      case 0:
        return NIL;
      case 253:
      case 252:
      case 251:
      case 250:
      case 242:
      case 241: // special environments and markers
        return { kind: "opaque", type };
      case 255: {
        // REFSXP
        const idx = flags >> 8 || this.int();
        return this.refs[idx - 1] ?? NIL;
      }
      case 1: {
        // SYMSXP: a CHARSXP follows
        const inner = this.item();
        const name = inner.kind === "vector" && typeof inner.values[0] === "string" ? inner.values[0] : "";
        const sym: RValue = { kind: "sym", name };
        this.refs.push(sym);
        return sym;
      }
      case 9: // CHARSXP
        return { kind: "vector", type: "char", values: [this.charsxp()], attributes: new Map() };
      case 4: {
        // ENVSXP: locked flag, enclosure, frame, hash table, attributes
        const env: RValue = { kind: "opaque", type };
        this.refs.push(env);
        this.int();
        for (let i = 0; i < 4; i++) this.item();
        return env;
      }
      case 247:
      case 249:
      case 248: {
        // PERSISTSXP, NAMESPACESXP, PACKAGESXP: a string vector of names
        this.int();
        const n = this.int();
        for (let i = 0; i < n; i++) this.item();
        const v: RValue = { kind: "opaque", type };
        this.refs.push(v);
        return v;
      }
      case 238: {
        // ALTREP: class info, state, attributes
        const info = this.item();
        const state = this.item();
        const attr = this.item();
        return this.altrep(info, state, attr);
      }
      case 2:
      case 3:
      case 5:
      case 6:
      case 17:
      case 239:
      case 240: {
        // pairlist-like: attr?, tag?, car, cdr
        const items: { tag: string | null; value: RValue }[] = [];
        let f = flags;
        for (;;) {
          if ((f & (1 << 9)) !== 0) this.item();
          const tag = (f & (1 << 10)) !== 0 ? this.item() : NIL;
          items.push({ tag: tag.kind === "sym" ? tag.name : null, value: this.item() });
          f = this.int();
          const t = f & 0xff;
          if (t === 254) break;
          if (![2, 3, 5, 6, 17, 239, 240].includes(t)) {
            this.off -= 4; // the cdr is not a pairlist cell: read it as an item
            items.push({ tag: null, value: this.item() });
            break;
          }
        }
        return type === 2 ? { kind: "pairlist", items } : { kind: "opaque", type };
      }
      case 25: {
        // S4SXP: attributes only
        const v: RValue = { kind: "opaque", type };
        if (hasAttr) this.item();
        return v;
      }
      default: {
        const vt = VECTOR_TYPES[type];
        if (vt === undefined) throw new Error(`rdata: unsupported SEXP type ${type} at byte ${this.off - 4}`);
        const n = this.length();
        const values: (string | number | boolean | null | RValue)[] = [];
        if (vt === "lgl" || vt === "int")
          for (let i = 0; i < n; i++) {
            const x = this.int();
            values.push(x === -2147483648 ? null : vt === "lgl" ? x !== 0 : x);
          }
        else if (vt === "real") for (let i = 0; i < n; i++) values.push(this.double());
        else if (vt === "cplx") for (let i = 0; i < 2 * n; i++) values.push(this.double());
        else if (vt === "raw") values.push(...this.bytes(n));
        else if (vt === "str")
          for (let i = 0; i < n; i++) {
            this.int(); // CHARSXP flags
            values.push(this.charsxp());
          }
        else for (let i = 0; i < n; i++) values.push(this.item());
        const attributes = new Map<string, RValue>();
        if (hasAttr) {
          const a = this.item();
          if (a.kind === "pairlist")
            for (const it of a.items) if (it.tag !== null) attributes.set(it.tag, it.value);
        }
        void hasTag;
        return { kind: "vector", type: vt, values, attributes };
      }
    }
  }

  private altrep(info: RValue, state: RValue, attr: RValue): RValue {
    const cls =
      info.kind === "pairlist" && info.items[0].value.kind === "sym" ? info.items[0].value.name : "?";
    const attributes = new Map<string, RValue>();
    if (attr.kind === "pairlist")
      for (const it of attr.items) if (it.tag !== null) attributes.set(it.tag, it.value);
    if (cls === "compact_intseq" || cls === "compact_realseq") {
      const [n, start, step] = state.kind === "vector" ? (state.values as number[]) : [0, 0, 0];
      const values = Array.from({ length: n }, (_, i) => start + i * step);
      return { kind: "vector", type: cls === "compact_intseq" ? "int" : "real", values, attributes };
    }
    if (cls.startsWith("wrap_") && state.kind === "vector" && state.values[0] !== undefined)
      return state.values[0] as RValue;
    if (cls === "deferred_string" && state.kind === "pairlist") {
      const arg = state.items[0].value;
      const values = arg.kind === "vector" ? arg.values.map((v) => (v === null ? null : String(v))) : [];
      return { kind: "vector", type: "str", values, attributes };
    }
    throw new Error(`rdata: unsupported ALTREP class '${cls}'`);
  }
}

/** Reads one serialized object (`X\n` XDR format; gzip/zlib-wrapped input is unpacked first). */
export function readRds(data: Buffer): RValue {
  let buf = data[0] === 0x1f && data[1] === 0x8b ? gunzipSync(data) : data;
  if (buf[0] === 0x78 && buf[1] !== 0x0a) buf = inflateSync(buf);
  if (buf.toString("latin1", 0, 2) !== "X\n")
    throw new Error(
      `rdata: not an XDR serialization (starts ${JSON.stringify(buf.toString("latin1", 0, 2))})`,
    );
  const r = new Reader(buf.subarray(2));
  const version = r.int();
  r.int();
  r.int();
  if (version === 3)
    r.bytes(r.int()); // native encoding name
  else if (version !== 2) throw new Error(`rdata: serialization version ${version} is not supported`);
  return r.item();
}

/** Every variable of a lazy-load database, by name. */
export function readLazyLoadDb(rdx: Buffer, rdb: Buffer): Map<string, RValue> {
  const index = readRds(rdx);
  if (index.kind !== "vector" || index.type !== "list") throw new Error("rdata: .rdx is not a list");
  const names = index.attributes.get("names");
  const vi = names?.kind === "vector" ? names.values.indexOf("variables") : -1;
  const vars = index.values[vi] as RValue | undefined;
  if (vars === undefined || vars.kind !== "vector") throw new Error("rdata: .rdx has no 'variables' entry");
  const varNames = vars.attributes.get("names");
  const out = new Map<string, RValue>();
  vars.values.forEach((pos, i) => {
    const [off, len] = (pos as RValue & { kind: "vector" }).values as number[];
    const blob = rdb.subarray(off, off + len);
    const body = inflateSync(blob.subarray(4)); // 4-byte length, then zlib
    out.set(String((varNames as RValue & { kind: "vector" }).values[i]), readRds(body));
  });
  return out;
}

/** A character vector's values (NA as ""). */
export function rStrings(v: RValue | undefined): string[] {
  if (v === undefined || v.kind !== "vector" || v.type !== "str")
    throw new Error("rdata: expected a character vector");
  return v.values.map((x) => (x === null ? "" : String(x)));
}
