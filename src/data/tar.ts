// Minimal reader for (gzipped) tar archives such as `npm pack` tarballs: ustar headers, GNU long names
// and pax path records. Regular files only; everything is read into memory (npm tarballs are small).
import { gunzipSync } from "node:zlib";

/** Maps each regular file's path to its bytes. */
export function readTar(archive: Buffer): Map<string, Buffer> {
  const buf = archive[0] === 0x1f && archive[1] === 0x8b ? gunzipSync(archive) : archive;
  const files = new Map<string, Buffer>();
  let off = 0;
  let longName: string | null = null;
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const str = (a: number, n: number) => h.toString("utf8", a, a + n).replace(/\0.*$/s, "");
    const size = parseInt(str(124, 12).trim() || "0", 8);
    const type = String.fromCharCode(h[156] || 0x30);
    const prefix = str(345, 155);
    let name = longName ?? (prefix ? `${prefix}/${str(0, 100)}` : str(0, 100));
    longName = null;
    const body = buf.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === "L") longName = body.toString("utf8").replace(/\0.*$/s, "");
    else if (type === "x") {
      const m = /\d+ path=([^\n]*)\n/.exec(body.toString("utf8"));
      if (m) longName = m[1];
    } else if (type === "0" || type === "\0" || type === "7") {
      name = name.replace(/^\.\//, "");
      files.set(name, Buffer.from(body));
    }
  }
  return files;
}
