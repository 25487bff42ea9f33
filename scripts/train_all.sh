#!/usr/bin/env bash
# The whole training recipe, resumable: run it again after an interruption and every finished stage is
# skipped, the unfinished one resumes from its last checkpoint. Decoder and encoder pre-training run side
# by side on one thread each (a 1-thread step uses its core better than a 2-thread step uses two).
#   DATA=runs/data RUNS=runs scripts/train_all.sh            (logs in $RUNS/*.log)
# Needs $DATA/train.u16 and $DATA/derived (README, "Training": data build, datasets build, train tokens).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-runs/data}
RUNS=${RUNS:-runs}
K=${K:-16}
refrag() { node dist/src/cli/main.js "$@"; }
# Validation curves for the REFRAG stages when a validation stream exists (refrag train tokens --split validation).
VALID=()
test -f "$DATA/valid.u16" && VALID=(--valid "$DATA/valid.u16")
stage() { local name=$1; shift; echo "$(date -u +%H:%M:%S) $name" >&2; refrag "$@" >> "$RUNS/$name.log" 2>&1; }
mkdir -p "$RUNS"
test -f "$DATA/train.u16" || { echo "missing $DATA/train.u16 (refrag train tokens …)" >&2; exit 1; }
test -f "$DATA/derived/qa.jsonl" || { echo "missing $DATA/derived (refrag datasets build …)" >&2; exit 1; }

stage decoder --threads 1 train decoder --data "$DATA/train.u16" --out "$RUNS/decoder" \
  --steps "${DECODER_STEPS:-6000}" --batch 16 --seq 512 --lr 1e-3 --save-every 50 &
decoder=$!
stage encoder --threads 1 train encoder --data "$DATA/train.u16" --out "$RUNS/encoder" \
  --steps "${ENCODER_STEPS:-2000}" --save-every 100 &
encoder=$!
wait "$decoder" && wait "$encoder"

stage reconstruct train reconstruct --data "$DATA/train.u16" --encoder "$RUNS/encoder" --decoder "$RUNS/decoder" \
  --k "$K" --out "$RUNS/rec" --steps "${REC_STEPS:-2000}" "${VALID[@]}"
stage cpt train cpt --data "$DATA/train.u16" --from "$RUNS/rec" --out "$RUNS/cpt" --steps "${CPT_STEPS:-2000}" "${VALID[@]}"
stage mixed train mixed --data "$DATA/train.u16" --from "$RUNS/cpt" --out "$RUNS/mixed" --steps "${MIXED_STEPS:-1000}" --expand 0.1 \
  "${VALID[@]}"
stage policy train policy --data "$DATA/train.u16" --from "$RUNS/mixed" --out "$RUNS/policy" --steps "${POLICY_STEPS:-400}"

test -d "$RUNS/index" || refrag index build --passages "$DATA/derived/passages.jsonl" --out "$RUNS/index"
if ! test -f "$RUNS/sft-train.jsonl"; then
  refrag index examples --index "$RUNS/index" --qa "$DATA/derived/qa.jsonl" --split train --force-gold --out "$RUNS/qa-train.jsonl"
  refrag index examples --index "$RUNS/index" --conversations "$DATA/derived/conversations.jsonl" --split train \
    --force-gold --out "$RUNS/conv-train.jsonl"
  cat "$RUNS/qa-train.jsonl" "$RUNS/conv-train.jsonl" > "$RUNS/sft-train.jsonl"
fi
stage finetune train finetune --from "$RUNS/policy" --data "$RUNS/sft-train.jsonl" --out "$RUNS/refrag" \
  --steps "${SFT_STEPS:-1000}" --lr 2e-5

test -f "$RUNS/qa-test.jsonl" ||
  refrag index examples --index "$RUNS/index" --qa "$DATA/derived/qa.jsonl" --split test --out "$RUNS/qa-test.jsonl"
refrag eval qa --model "$RUNS/refrag" --data "$RUNS/qa-test.jsonl" --select none,all,random,policy ${QA_LIMIT:+--limit "$QA_LIMIT"} \
  --out "$RUNS/qa-test.json" | tee "$RUNS/qa-test.md"
test -f "$RUNS/sum-test.jsonl" ||
  refrag index examples --summaries "$DATA/derived/summaries.jsonl" --split test --out "$RUNS/sum-test.jsonl"
refrag eval qa --model "$RUNS/refrag" --data "$RUNS/sum-test.jsonl" --select none,all ${QA_LIMIT:+--limit "$QA_LIMIT"} \
  --max-tokens 32 --out "$RUNS/sum-test.json" | tee "$RUNS/sum-test.md"
echo "done: $RUNS/refrag (copy config.json, model.safetensors, tokenizer.json to assets/model to ship it)" >&2
