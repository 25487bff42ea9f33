// GEMM side-by-side: refrag's packed SGEMM against Debian's OpenBLAS and BLIS on this machine, plus the
// plain FMA peak measured at the same moments. Needs g++ and, for the libraries,
//   apt-get install libopenblas-dev libblis-dev
// (a measuring tool only: refrag itself never links a system BLAS). Rounds alternate the three
// libraries so that a noisy moment on the shared machine hits them all alike.
//   node tools/blas/run.mjs [rounds]   -> table on stdout, bench/results/blas_compare.json
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const out = join(here, "build");
mkdirSync(out, { recursive: true });
const lib = "/usr/lib/x86_64-linux-gnu";
const flags = ["-std=c++17", "-O3", "-ffp-contract=fast", "-fno-math-errno", "-pthread"];

const builds = {
  "fma peak": ["-DPEAK"],
  refrag: [
    "-DOURS",
    `-I${join(root, "native")}`,
    ...["gemm.cc", "gemm_gemv.cc", "pool.cc"].map((f) => join(root, "native", f)),
  ],
  openblas: [`${lib}/openblas-pthread/libopenblas.so`, `-Wl,-rpath,${lib}/openblas-pthread`],
  blis: [`${lib}/libblis.so.4`],
};
const env = {
  "fma peak": {},
  refrag: {},
  openblas: { OPENBLAS_NUM_THREADS: "T" },
  blis: { BLIS_NUM_THREADS: "T" },
};
const available = {};
for (const [name, extra] of Object.entries(builds)) {
  const need = extra.find((a) => a.startsWith(lib));
  if (need && !existsSync(need.replace(/^-Wl,-rpath,/, ""))) {
    console.log(`${name}: not installed (apt-get install libopenblas-dev libblis-dev), skipped`);
    continue;
  }
  execFileSync(
    "g++",
    [...flags, join(here, "compare.cc"), ...extra, "-o", join(out, name.replace(" ", "_"))],
    { stdio: "inherit" },
  );
  available[name] = join(out, name.replace(" ", "_"));
}

const rounds = Number(process.argv[2] ?? 3);
if (!Number.isInteger(rounds) || rounds < 1)
  throw new Error(`rounds must be a positive integer, got ${process.argv[2]}`);
const results = {}; // results[name][threads][shape] = [{median, best}...]
for (let round = 0; round < rounds; round++)
  for (const threads of [1, 2])
    for (const [name, bin] of Object.entries(available)) {
      const e = { ...process.env };
      for (const [k, v] of Object.entries(env[name])) e[k] = v === "T" ? String(threads) : v;
      const lines = execFileSync(bin, [String(threads)], { env: e, encoding: "utf8" })
        .trim()
        .split("\n");
      for (const line of lines) {
        const r = JSON.parse(line);
        const shape =
          r.M === 0 ? "all shapes" : `${r.M}x${r.N}x${r.K}${r.tA ? " tA" : ""}${r.tB ? " tB" : ""}`;
        ((results[name] ??= {})[threads] ??= {})[shape] ??= [];
        results[name][threads][shape].push({ median: r.median, best: r.best });
      }
      process.stderr.write(`round ${round + 1}/${rounds} ${name} ${threads}T done\n`);
    }

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const names = Object.keys(available);
const rows = [];
for (const threads of [1, 2])
  for (const shape of Object.keys(results.refrag[threads])) {
    const row = { shape, threads };
    for (const n of names) {
      if (n === "fma peak") {
        row[n] = { median: median(results[n][threads]["all shapes"].map((r) => r.median)), best: 0 };
        row[n].best = Math.max(...results[n][threads]["all shapes"].map((r) => r.best));
        continue;
      }
      const rs = results[n][threads][shape];
      row[n] = { median: median(rs.map((r) => r.median)), best: Math.max(...rs.map((r) => r.best)) };
    }
    rows.push(row);
  }
const pad = (s, w) => String(s).padEnd(w);
console.log(pad("shape", 22) + pad("threads", 9) + names.map((n) => pad(`${n} med/best`, 22)).join(""));
for (const r of rows)
  console.log(
    pad(r.shape, 22) +
      pad(r.threads, 9) +
      names.map((n) => pad(`${r[n].median.toFixed(1)} / ${r[n].best.toFixed(1)}`, 22)).join(""),
  );
const file = join(root, "bench", "results", "blas_compare.json");
writeFileSync(
  file,
  JSON.stringify({ date: new Date().toISOString(), rounds, unit: "GFLOP/s", rows }, null, 2) + "\n",
);
console.log(`wrote ${file}`);
