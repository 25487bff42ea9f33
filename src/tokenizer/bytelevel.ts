// GPT-2 byte-level pieces: the byte <-> printable-character map and the pre-tokenisation regex.
// Every UTF-8 byte maps to one visible character, so a BPE over these characters is lossless on any text.

/** The GPT-2 pre-tokenisation pattern, as Hugging Face's ByteLevel pre-tokenizer (use_regex: true) writes it. */
export const GPT2_PATTERN =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** A fresh global regex for GPT2_PATTERN (regexes with /g carry lastIndex, so callers get their own). */
export function gpt2Regex(): RegExp {
  return new RegExp(GPT2_PATTERN, "gu");
}

/** byte (0..255) -> character, GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const out = new Array<string>(256);
  const kept = new Set(keep);
  for (const b of keep) out[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!kept.has(b)) out[b] = String.fromCharCode(256 + n++);
  }
  return out;
})();

/** character code -> byte, or -1 for characters outside the byte-level alphabet. */
export const CHAR_TO_BYTE: Int16Array = (() => {
  const t = new Int16Array(512).fill(-1);
  BYTE_TO_CHAR.forEach((c, b) => (t[c.charCodeAt(0)] = b));
  return t;
})();

/** The 256 alphabet characters in byte order (the trainer's initial vocabulary). */
export function byteAlphabet(): string[] {
  return BYTE_TO_CHAR.slice();
}

/** Byte-level form of a string: UTF-8 bytes, each replaced by its alphabet character. */
export function toByteLevel(text: string): string {
  const bytes = Buffer.from(text, "utf8");
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_CHAR[bytes[i]];
  return s;
}

/** Inverse of toByteLevel for one token string; null if a character is outside the alphabet. */
export function byteLevelToBytes(token: string): Uint8Array | null {
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    const b = c < 512 ? CHAR_TO_BYTE[c] : -1;
    if (b < 0) return null;
    out[i] = b;
  }
  return out;
}
