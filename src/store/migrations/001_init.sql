-- 001: passages with weighted full-text search, chunk vectors, dense embeddings.
-- Run by src/store/migrate.ts inside one transaction, with search_path set to the store's schema.

-- Store-wide settings fixed at creation (title_weight).
CREATE TABLE settings (
  key text PRIMARY KEY,
  value text NOT NULL
);

-- One row per passage. The title is weight A and the text weight D in the tsvector; ranking gives A
-- title_weight times the weight of D.
CREATE TABLE passages (
  id text PRIMARY KEY,
  doc_id text NOT NULL,
  title text NOT NULL,
  text text NOT NULL,
  meta jsonb NOT NULL DEFAULT '{}'::jsonb,
  tsv tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english'::regconfig, title), 'A') ||
    setweight(to_tsvector('english'::regconfig, text), 'D')
  ) STORED,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX passages_doc_id ON passages (doc_id);
CREATE INDEX passages_tsv ON passages USING gin (tsv);

-- The REFRAG encoder's vectors of a passage ([rows, cols], little-endian f32 or bf16), per encoder
-- weights id and chunk size k. Removed with their passage.
CREATE TABLE chunk_vectors (
  passage_id text NOT NULL REFERENCES passages (id) ON DELETE CASCADE,
  encoder_id text NOT NULL,
  k integer NOT NULL CHECK (k > 0),
  dtype text NOT NULL CHECK (dtype IN ('F32', 'BF16')),
  rows integer NOT NULL CHECK (rows >= 0),
  cols integer NOT NULL CHECK (cols > 0),
  data bytea NOT NULL,
  PRIMARY KEY (passage_id, encoder_id, k),
  CHECK (octet_length(data) = rows * cols * (CASE dtype WHEN 'F32' THEN 4 ELSE 2 END))
);

-- Dense retrievers. Each gets a partial HNSW index (cosine) over its rows of `embeddings`, created
-- with the embedder (vectors of one column may differ in dimension across embedders).
CREATE TABLE embedders (
  id text PRIMARY KEY,
  dim integer NOT NULL CHECK (dim > 0 AND dim <= 2000),
  index_name text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE embeddings (
  passage_id text NOT NULL REFERENCES passages (id) ON DELETE CASCADE,
  embedder_id text NOT NULL REFERENCES embedders (id) ON DELETE CASCADE,
  embedding vector NOT NULL,
  PRIMARY KEY (passage_id, embedder_id)
);
