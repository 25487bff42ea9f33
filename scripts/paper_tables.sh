#!/usr/bin/env bash
# The paper's tables in miniature (issue #9, "Measure") from trained checkpoints, into $OUT (docs/results):
# for each table NAME.json, NAME.md and NAME.svg. Resumable: a table whose NAME.json exists is skipped
# (delete it to redo), and the perplexity tables pick up their finished (row, domain) results from
# NAME.partial.jsonl after an interruption. A table whose checkpoints are not set is skipped with a note.
#
# The run (from the repository root; model folders as scripts/train_all.sh names them; Table 3's example
# files in runs/tables, built by the commands below when missing):
#
#   BASELINE=weights/decoder REFRAG8=runs/cpt8 REFRAG16=runs/cpt16 REFRAG32=runs/cpt32 POLICY16=runs/policy16 \
#   REC_CURRICULUM=runs/rec16 REC_NONE=runs/rec16-none \
#   QA_MODEL=runs/refrag16-sft FT_BASELINE=runs/llama-ft EXAMPLES=runs/tables scripts/paper_tables.sh
#
# REFRAG8/16/32 are the CPT checkpoints (every context chunk compressed); POLICY16 (mixed input + the RL
# policy, optional) is the model of Table 1's rate-8 selection rows, else REFRAG16 expands its chunks itself.
#
# Table 1  (table1): s = 2048, o = 128/256/512 on the 4,096-token documents of the four domains; rows: the
#          baseline decoder with no / full / last 128 / last 256 context tokens, REFRAG8/16/32 (those set),
#          POLICY16 (else REFRAG16) at effective rate 8 with the RL policy (when it has one) and each
#          heuristic, and REFRAG16's own decoder reading the raw rows; gains (no − x)/(no − full).
# Table 2  (table2): s = 10240 and 20480 (4× and 8× the baseline's 2,560-token training window) on the
#          16,384-token documents; the baseline's full context reads past its window on purpose.
# Table 11 (table11): reconstruction at 1, 16 and 128 chunks, with vs without the curriculum.
# Table 3  (table3): RAG answers: QA_MODEL with 8 passages, a fraction QA_FRACTION (0.1) of chunks expanded
#          by the query heuristic (also 0.05 and 0.03: about as many decoder positions as one raw passage),
#          by the RL policy, or none; FT_BASELINE (fine-tuned with every
#          passage raw) reading 1 and 8 passages raw, and none; strong (top 8) and weak (8 of the top 200)
#          retrieval, conversations (multi-turn), summaries. The example files are built once from $INDEX.
# Knobs (smaller for a smoke run): WINDOWS / MAX_WINDOWS (Table 1 windows per document / per domain),
# T2_S, T2_O, T2_WINDOWS, T2_MAX_WINDOWS, REC_CHUNKS, REC_WINDOWS, QA_LIMIT, QA_ROWS, QA_FRACTION, THREADS,
# NICE.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-runs/data}
OUT=${OUT:-docs/results}
RUNS=${RUNS:-runs}
INDEX=${INDEX:-$RUNS/index}
EXAMPLES=${EXAMPLES:-$RUNS/tables}
BASELINE=${BASELINE:-weights/decoder}
refrag() { nice -n "${NICE:-15}" node dist/src/cli/main.js --threads "${THREADS:-1}" "$@"; }
say() { echo "$(date -u +%H:%M:%S) paper_tables: $*" >&2; }
# missing VAR…: names the first unset variable (a table needs it) and fails.
missing() {
  for v in "$@"; do
    if [ -z "${!v:-}" ]; then
      echo "$v"
      return 0
    fi
  done
  return 1
}
# table NAME VAR… -- ARGS…: run `refrag ARGS --out $OUT/NAME.json` unless done or a VAR is unset.
table() {
  local name=$1
  shift
  local vars=()
  while [ "$1" != "--" ]; do
    vars+=("$1")
    shift
  done
  shift
  if test -f "$OUT/$name.json"; then
    say "$name: $OUT/$name.json exists, skipped (delete it to redo)"
    return 0
  fi
  local v
  if v=$(missing "${vars[@]}"); then
    say "$name: skipped, $v is not set"
    return 0
  fi
  say "$name: refrag $*"
  refrag "$@" --out "$OUT/$name.json" > /dev/null
  say "$name: done -> $OUT/$name.md"
}
mkdir -p "$OUT" "$EXAMPLES"
test -d "$DATA/derived" || { echo "missing $DATA/derived (refrag datasets build …)" >&2; exit 1; }
opt() { test -n "${!1:-}" && echo "--model $2=${!1}"; true; }

# shellcheck disable=SC2046
table table1 BASELINE REFRAG16 -- eval perplexity --baseline "$BASELINE" \
  $(opt REFRAG8 refrag8) --model "refrag16=${REFRAG16:-}" $(opt REFRAG32 refrag32) $(opt POLICY16 policy16) \
  --rate 8 --expand-model "$(test -n "${POLICY16:-}" && echo policy16 || echo refrag16)" --raw-from refrag16 --last 128,256 \
  --corpus "$DATA/corpus" --domains "$DATA/derived/domains.json" --length 4096 --s 2048 --o 128,256,512 \
  --windows "${WINDOWS:-2}" --max-windows "${MAX_WINDOWS:-8}"

table table2 BASELINE REFRAG16 -- eval perplexity --baseline "$BASELINE" --baseline-rows none,full \
  --model "refrag16=${REFRAG16:-}" --raw-from none --beyond-window \
  --corpus "$DATA/corpus" --domains "$DATA/derived/domains.json" --length 16384 \
  --s "${T2_S:-10240,20480}" --o "${T2_O:-128,512}" \
  --windows "${T2_WINDOWS:-1}" --max-windows "${T2_MAX_WINDOWS:-2}"

table table11 REC_CURRICULUM REC_NONE -- eval reconstruction \
  --model "curriculum=${REC_CURRICULUM:-}" --model "none=${REC_NONE:-}" --data "$DATA/valid.u16" \
  --chunks "${REC_CHUNKS:-1,16,128}" --windows "${REC_WINDOWS:-16}"

# Table 3's example files (test split, 8 passages; the weak retriever draws 8 of the top 200).
examples() {
  local file=$1
  shift
  if ! test -f "$EXAMPLES/$file"; then
    say "examples: refrag index examples $* --out $EXAMPLES/$file"
    refrag index examples "$@" --out "$EXAMPLES/$file" > /dev/null
  fi
}
if [ -n "${QA_MODEL:-}" ] && [ -n "${FT_BASELINE:-}" ] && ! test -f "$OUT/table3.json"; then
  test -d "$INDEX" || { echo "missing $INDEX (refrag index build --passages $DATA/derived/passages.jsonl --out $INDEX)" >&2; exit 1; }
  examples qa-strong8.jsonl --index "$INDEX" --qa "$DATA/derived/qa.jsonl" --split test -k 8
  examples qa-weak8.jsonl --index "$INDEX" --qa "$DATA/derived/qa.jsonl" --split test -k 8 --weak 200 --seed 1
  examples conv-strong8.jsonl --index "$INDEX" --conversations "$DATA/derived/conversations.jsonl" --split test -k 8
  examples sum-test.jsonl --summaries "$DATA/derived/summaries.jsonl" --split test
fi
table table3 QA_MODEL FT_BASELINE -- eval qa --model "refrag16=${QA_MODEL:-}" --model "ft=${FT_BASELINE:-}" \
  --rows "${QA_ROWS:-refrag16:query:8,refrag16:query@0.05:8,refrag16:query@0.03:8,refrag16:policy:8,refrag16:none:8,ft:all:1,ft:all:8,ft:all:0}" \
  --fraction "${QA_FRACTION:-0.1}" \
  --data "strong=$EXAMPLES/qa-strong8.jsonl" --data "weak=$EXAMPLES/qa-weak8.jsonl" \
  --data "conversations=$EXAMPLES/conv-strong8.jsonl" --data "summaries=$EXAMPLES/sum-test.jsonl" \
  ${QA_LIMIT:+--limit "$QA_LIMIT"}

say "finished: $(ls "$OUT"/*.md 2> /dev/null | tr '\n' ' ')"
