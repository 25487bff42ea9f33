#!/usr/bin/env bash
# The whole k = 16 recipe as it was run (docs/NOTES.md, sessions 3-5; weights/README.md), resumable: every
# stage writes its checkpoints to $RUNS/NAME and resumes from there when run again; a finished stage is
# skipped. Stages that do not depend on each other run side by side as two one-thread jobs (a 1-thread step
# uses its core better than a 2-thread step uses two). Logs: $RUNS/NAME.log.
#
#   DATA=runs/data RUNS=runs scripts/train_all.sh
#
# Needs $DATA/train.u16, $DATA/valid.u16 and $DATA/derived (README, "Training": data build, datasets build,
# train tokens). Starts from the committed weights/decoder and weights/rec16 when present (their stages are
# skipped). Step counts of the stages not yet run end to end (mixed, policy, k = 8 / 32) are proposals and
# can be changed from the environment (MIXED_STEPS, POLICY_STEPS, CPT_SHORT_STEPS).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-runs/data}
RUNS=${RUNS:-runs}
ENCODER_CONFIG=scripts/configs/encoder.json
refrag() { nice -n "${NICE:-0}" node dist/src/cli/main.js --threads 1 "$@"; }
say() { echo "$(date -u +%H:%M:%S) train_all: $*" >&2; }
# finished DIR: the run in DIR reached its last step.
finished() {
  test -f "$1/training_state.json" &&
    node -e 'const s = require(process.argv[1]); process.exit(s.step >= s.steps ? 0 : 1)' "$(realpath "$1")/training_state.json"
}
# stage NAME ARGS…: `refrag ARGS --out $RUNS/NAME` (resumes), logged to $RUNS/NAME.log; skipped when finished.
stage() {
  local name=$1
  shift
  if finished "$RUNS/$name"; then
    say "$name: finished, skipped"
    return 0
  fi
  say "$name: refrag $*"
  refrag "$@" --out "$RUNS/$name" >> "$RUNS/$name.log" 2>&1
  say "$name: done"
}
mkdir -p "$RUNS"
for f in "$DATA/train.u16" "$DATA/valid.u16" "$DATA/derived/qa.jsonl"; do
  test -f "$f" || { echo "missing $f (README, \"Training\": data build, datasets build, train tokens)" >&2; exit 1; }
done
STREAMS=(--data "$DATA/train.u16" --valid "$DATA/valid.u16" --eval-every 100 --save-every 25)

# 1. Decoder pre-training (LLaMA 256 × 6): phase 1 at 512-token windows, phase 2 continues at 2,560-token
#    windows (the evaluated s + o = 2,048 + 512).
if test -f weights/decoder/config.json; then
  DECODER=weights/decoder
else
  stage decoder-a train decoder "${STREAMS[@]}" --steps 1200 --batch 8 --seq 512 --lr 1e-3
  stage decoder train decoder --from "$RUNS/decoder-a" "${STREAMS[@]}" --steps 800 --batch 2 --seq 2560 --lr 5e-4
  DECODER=$RUNS/decoder
fi

# Step 12, Table 11 with a paced curriculum (sessions 13-14). Table 8's mixture reaches the long levels
# before the decoder has learnt to find their vectors, so neither Table 8 pair (steps 2 and 11) reads past
# chunk 2. Paced instead: one stage per level of the ladder 1 -> 4 -> 16 -> 64 -> 128 chunks, each `--from` the
# last, every step at that level (1,500 steps at 1 chunk, lr 1e-3; then 800, 1,000, 1,000, 1,000 at lr 5e-4).
# The twin runs the same stages (steps, learning rates, seeds, restarts) with every step at 128 chunks. Side
# by side, ~5 h each; not used by later stages. `ONLY=table11-paced scripts/train_all.sh` runs just this step,
# skipping what is committed (weights/rec-paced128, weights/rec-paced128-none) or starting from the chains'
# committed second stages (weights/rec-paced4, weights/rec-flat2) when present.
# The deep chain (session 15) gives the first level 3,000 more steps at 1 chunk (rec-deep1, lr 5e-4, seed 8:
# one vector then reconstructs its 16 tokens at 1.0 nats instead of 2.7), then climbs the same ladder; the
# twin gets the same 3,000 steps at 128 chunks as its last stage (rec-deep128-none), so that each pair has
# equal steps (5,300 and 8,300). Each arm is skipped when committed (weights/rec-deep128, rec-deep128-none);
# the deep chain else starts from the committed weights/rec-deep64 (or rec-deep1) when present. Both arms then
# get 3,000 more steps at 128 chunks twice (rec-deep128-more and -more2, rec-deep128-none-more and -more2:
# 11,300 and 14,300 steps each).
PACED=(train reconstruct --data "$DATA/train.u16" --valid "$DATA/valid.u16" --eval-every 100 --save-every 25
  --train-decoder --k 16 --curriculum none --tokens 4096)
NEW_ENCODER=(--encoder-config "$ENCODER_CONFIG" --decoder "$DECODER")
# committed NAME: true, and says the stage is skipped, when weights/NAME is committed.
committed() {
  test -f "weights/$1/config.json" || return 1
  say "$1: committed (weights/$1), skipped"
}
# ladder NAME FROM LEVEL...: one stage per level (NAME4, NAME16, ...), each `--from` the last, every step at it.
ladder() {
  local name=$1 from=$2 level steps seed
  shift 2
  for level in "$@"; do
    case $level in
      4) steps=800 seed=3 ;;
      16) steps=1000 seed=4 ;;
      64) steps=1000 seed=6 ;;
      128) steps=1000 seed=7 ;;
      *) say "ladder: no schedule for $level chunks" && exit 1 ;;
    esac
    stage "$name$level" "${PACED[@]}" --from "$from" --lr 5e-4 --steps "$steps" --seed "$seed" --max-chunks "$level"
    from=$RUNS/$name$level
  done
}
paced_chain() {
  committed rec-paced128 && return
  if test -f weights/rec-paced4/config.json; then
    ladder rec-paced weights/rec-paced4 16 64 128
  else
    stage rec-paced1 "${PACED[@]}" "${NEW_ENCODER[@]}" --lr 1e-3 --steps 1500 --max-chunks 1
    ladder rec-paced "$RUNS/rec-paced1" 4 16 64 128
  fi
}
twin_chain() {
  local flat=(--max-chunks 128) f2=weights/rec-flat2 t5=weights/rec-paced128-none
  if ! test -f "$t5/config.json"; then
    if ! test -f "$f2/config.json"; then
      stage rec-flat1 "${PACED[@]}" "${NEW_ENCODER[@]}" --lr 1e-3 --steps 1500 "${flat[@]}"
      stage rec-flat2 "${PACED[@]}" --from "$RUNS/rec-flat1" --lr 5e-4 --steps 800 --seed 3 "${flat[@]}"
      f2=$RUNS/rec-flat2
    fi
    stage rec-flat3 "${PACED[@]}" --from "$f2" --lr 5e-4 --steps 1000 --seed 4 "${flat[@]}"
    stage rec-flat4 "${PACED[@]}" --from "$RUNS/rec-flat3" --lr 5e-4 --steps 1000 --seed 6 "${flat[@]}"
    stage rec-paced128-none "${PACED[@]}" --from "$RUNS/rec-flat4" --lr 5e-4 --steps 1000 --seed 7 "${flat[@]}"
    t5=$RUNS/rec-paced128-none
  fi
  committed rec-deep128-none ||
    stage rec-deep128-none "${PACED[@]}" --from "$t5" --lr 5e-4 --steps 3000 --seed 8 "${flat[@]}"
  more rec-deep128-none rec-deep128-none-more 9
  more rec-deep128-none-more rec-deep128-none-more2 10
}
# more FROM NAME SEED: 3,000 more steps at 128 chunks, the same for both arms (does the ratio keep growing with
# steps?), from the run FROM (f32) when it is on this machine, else from its committed copy. Skipped when
# weights/NAME is committed.
more() {
  local from=$RUNS/$1
  committed "$2" && return
  test -f "$from/config.json" || from=weights/$1
  stage "$2" "${PACED[@]}" --from "$from" --lr 5e-4 --steps 3000 --seed "$3" --max-chunks 128
}
deep_chain() {
  deep_to_128
  more rec-deep128 rec-deep128-more 9
  more rec-deep128-more rec-deep128-more2 10
}
deep_to_128() {
  committed rec-deep128 && return
  if test -f weights/rec-deep64/config.json; then
    ladder rec-deep weights/rec-deep64 128
    return
  fi
  local d1=weights/rec-deep1
  if ! test -f "$d1/config.json"; then
    stage rec-paced1 "${PACED[@]}" "${NEW_ENCODER[@]}" --lr 1e-3 --steps 1500 --max-chunks 1
    stage rec-deep1 "${PACED[@]}" --from "$RUNS/rec-paced1" --lr 5e-4 --steps 3000 --seed 8 --max-chunks 1
    d1=$RUNS/rec-deep1
  fi
  ladder rec-deep "$d1" 4 16 64 128
}
table11_paced() {
  { paced_chain; deep_chain; } &
  local p=$!
  twin_chain
  wait "$p"
}
if test "${ONLY:-}" = table11-paced; then
  table11_paced
  exit 0
fi

# 2. Reconstruction (stage 1) to 16 chunks: a new 256 × 2 encoder whose word embeddings start from the
#    decoder's; the small decoder trains too. Its twin without the curriculum is Table 11's other row.
# Table 11's pair: the same reconstruction run with and without the curriculum, side by side.
curriculum_pair() {
  local with=$1 without=$2
  shift 2
  stage "$with" "$@" --curriculum table8 &
  local p=$!
  stage "$without" "$@" --curriculum none &
  local q=$!
  wait "$p"
  wait "$q"
}
REC=(train reconstruct "${STREAMS[@]}" --encoder-config "$ENCODER_CONFIG" --decoder "$DECODER" --train-decoder
  --k 16 --max-chunks 16 --tokens 4096 --lr 5e-4 --steps 1000)
if test -f weights/rec16/config.json; then
  REC16=weights/rec16
  stage rec16-none "${REC[@]}" --curriculum none
else
  curriculum_pair rec16 rec16-none "${REC[@]}"
  REC16=$RUNS/rec16
fi

# 3. RAG examples (BM25 over the passages): SFT = QA + conversation turns of the train split with the gold
#    passage forced in; QA validation without.
test -d "$RUNS/index" || refrag index build --passages "$DATA/derived/passages.jsonl" --out "$RUNS/index"
if ! test -f "$RUNS/sft-train.jsonl"; then
  refrag index examples --index "$RUNS/index" --qa "$DATA/derived/qa.jsonl" --split train --force-gold \
    --out "$RUNS/qa-train.jsonl"
  refrag index examples --index "$RUNS/index" --conversations "$DATA/derived/conversations.jsonl" --split train \
    --force-gold --out "$RUNS/conv-train.jsonl"
  cat "$RUNS/qa-train.jsonl" "$RUNS/conv-train.jsonl" > "$RUNS/sft-train.jsonl.tmp"
  mv "$RUNS/sft-train.jsonl.tmp" "$RUNS/sft-train.jsonl"
fi
test -f "$RUNS/qa-valid.jsonl" ||
  refrag index examples --index "$RUNS/index" --qa "$DATA/derived/qa.jsonl" --split validation \
    --out "$RUNS/qa-valid.jsonl"
# lr 3e-4: the paper's 2e-5 is for a 7B model; 1e-4 moved this small decoder too little (session 5).
# 800 steps (~1 epoch of the 6,192 examples): what the shipped model ran; the baseline runs the same.
SFT=(--data "$RUNS/sft-train.jsonl" --valid "$RUNS/qa-valid.jsonl" --lr 3e-4 --steps 800 --eval-every 200
  --save-every 50)

# 4. Continual pre-training (stage 2) to 128 chunks (s = 2,048) with 512 continuation tokens, beside the
#    full-context baseline LLaMA_FT (the same decoder fine-tuned on the SFT data with every passage raw).
CPT=(train cpt "${STREAMS[@]}" --continuation 512 --tokens 8192 --lr 3e-4)
if test -f weights/cpt16/config.json; then
  CPT16=weights/cpt16
  # The baseline runs beside the next stages (a third job on two cores until it ends).
  stage llama-ft train finetune --encoder-config "$ENCODER_CONFIG" --decoder "$DECODER" --expand 1 "${SFT[@]}" &
  ft=$!
else
  stage cpt16 "${CPT[@]}" --from "$REC16" --max-chunks 128 --steps 1500 &
  cpt=$!
  stage llama-ft train finetune --encoder-config "$ENCODER_CONFIG" --decoder "$DECODER" --expand 1 "${SFT[@]}" &
  ft=$!
  wait "$cpt"
  wait "$ft"
  ft=
  CPT16=$RUNS/cpt16
fi

# 5. Mixed input (10% of chunks raw) beside REFRAG8 (CPT from rec16 re-chunked at k = 8, s = 2,048 = 256 chunks).
stage mixed16 train mixed "${STREAMS[@]}" --from "$CPT16" --expand 0.1 --max-chunks 128 --continuation 512 \
  --tokens 8192 --lr 1e-4 --steps "${MIXED_STEPS:-500}" &
mixed=$!
stage cpt8 "${CPT[@]}" --from "$REC16" --k 8 --max-chunks 256 --steps "${CPT_SHORT_STEPS:-500}" &
cpt8=$!
wait "$mixed"
wait "$cpt8"

# 6. The RL selection policy (GRPO) on the mixed model, beside REFRAG32 (k = 32, 64 chunks).
stage policy16 train policy --data "$DATA/train.u16" --from "$RUNS/mixed16" --chunks 128 --expand 0.1 \
  --steps "${POLICY_STEPS:-200}" &
policy=$!
stage cpt32 "${CPT[@]}" --from "$REC16" --k 32 --max-chunks 64 --steps "${CPT_SHORT_STEPS:-500}" &
cpt32=$!
wait "$policy"
wait "$cpt32"

# 7. RAG fine-tuning (the paper's SFT) of the policy model on the same data as LLaMA_FT: the first shipped
#    model (session 6). It reads 10% of the chunks raw, the ones the query heuristic picks (`--select query`).
stage refrag16-sft train finetune --from "$RUNS/policy16" "${SFT[@]}" --expand 0.1 --select query
test -z "${ft:-}" || wait "$ft"

# 8. The copy stage (sessions 7-8): the decoders above cannot copy a span they have read (`eval induction`),
#    so they cannot spell out an answer. mixed16's decoder trains alone on a stream where every segment of
#    8-64 tokens is followed by its repeat (half of them random ids), then goes back into mixed16 for more
#    mixed input on a stream with some copies; the RAG fine-tuning and a policy on top give the shipped
#    model (refrag16c). The fair full-context baseline (llama-ft-copy) fine-tunes the same copy-capable
#    decoder with every passage raw.
test -f "$DATA/copy3-train.u16" || refrag train repeats --data "$DATA/train.u16" --out "$DATA/copy3-train.u16" \
  --tokens 8000000 --repeat 1 --random 0.5 --min 8 --max 64 --seed 3
test -f "$DATA/copymix-train.u16" || refrag train repeats --data "$DATA/train.u16" --out "$DATA/copymix-train.u16" \
  --tokens 8000000 --repeat 0.3 --random 0.2 --min 8 --max 64 --seed 5
stage m16copy train decoder --from "$RUNS/mixed16" --data "$DATA/copy3-train.u16" --valid "$DATA/valid.u16" \
  --eval-every 100 --save-every 25 --seq 256 --batch 16 --lr 1e-3 --steps 600
stage llama-ft-copy train finetune --encoder-config "$ENCODER_CONFIG" --decoder "$RUNS/m16copy" --expand 1 \
  "${SFT[@]}" &
ft=$!
stage mixed16c train mixed --from "$RUNS/mixed16" --decoder "$RUNS/m16copy" --data "$DATA/copymix-train.u16" \
  --valid "$DATA/valid.u16" --eval-every 100 --save-every 25 --expand 0.1 --max-chunks 128 --continuation 512 \
  --tokens 8192 --lr 1e-4 --steps 200
stage refrag16c-sft train finetune --from "$RUNS/mixed16c" "${SFT[@]}" --expand 0.1 --select query
stage refrag16c train policy --data "$DATA/train.u16" --from "$RUNS/refrag16c-sft" --chunks 128 --expand 0.0667 \
  --steps 300 --lr 2e-4
wait "$ft"

# 9. The shorter passage header (session 10): `1 title` instead of `[1] title:`, 3 fewer raw positions per
#    passage (24 at 8 passages). Both models above learned the old header; 200 more fine-tuning steps each
#    (the same examples, seed 2, lr 1e-4) teach them the new one. The shipped model is refrag16h; its
#    baseline llama-ft-h. (A twin of refrag16h fine-tuned at --expand 0.03 answered worse at every p.)
SFT2=(--data "$RUNS/sft-train.jsonl" --valid "$RUNS/qa-valid.jsonl" --lr 1e-4 --steps 200 --eval-every 100
  --save-every 25 --seed 2)
stage llama-ft-h train finetune --from "$RUNS/llama-ft-copy" --expand 1 "${SFT2[@]}" &
ft=$!
stage refrag16h train finetune --from "$RUNS/refrag16c" --expand 0.1 --select query "${SFT2[@]}"
wait "$ft"

# 10. The RL policy again (session 10): policy16c's 600 steps at G = 4 had not found what helps perplexity
#     most here (the chunks nearest the continuation), so it trains on with G = 8 and a higher learning rate
#     (240 steps, then 300 more from there with seed 2): policy16e, Table 1's selection comparison at 32 windows
#     per domain (docs/results/selection32-policy16e.md). Encoder, projector and decoder stay mixed16c's.
stage policy16c train policy --data "$DATA/train.u16" --from "$RUNS/mixed16c" --chunks 128 --expand 0.0667 \
  --steps 600 --lr 2e-4
POL=(--data "$DATA/train.u16" --chunks 128 --expand 0.0667 --lr 5e-4 --group 8)
stage policy16d train policy --from "$RUNS/policy16c" "${POL[@]}" --steps 240
stage policy16e train policy --from "$RUNS/policy16d" "${POL[@]}" --steps 300 --seed 2

# 11. Table 11 trained to the evaluated length (session 12): the reconstruction pair again, up to 128 chunks,
#     with and without the curriculum (docs/results/table11-128.md). Not used by later stages.
REC128=(train reconstruct --data "$DATA/train.u16" --valid "$DATA/valid.u16" --eval-every 200 --save-every 25
  --encoder-config "$ENCODER_CONFIG" --decoder "$DECODER" --train-decoder --k 16 --max-chunks 128 --tokens 4096
  --lr 5e-4 --steps 2200)
curriculum_pair rec128 rec128-none "${REC128[@]}"

# 12. Table 11 with a paced curriculum (defined after step 1, so that ONLY=table11-paced can run it alone).
table11_paced

say "done. Ship (as assets/model was): refrag convert dtype $RUNS/refrag16h assets/model --type bf16"
say "tables: BASELINE=$DECODER REFRAG8=$RUNS/cpt8 REFRAG16=$CPT16 REFRAG32=$RUNS/cpt32 POLICY16=$RUNS/policy16 \\"
say "  REC_CURRICULUM=$REC16 REC_NONE=$RUNS/rec16-none QA_MODEL=assets/model FT_BASELINE=$RUNS/llama-ft-h scripts/paper_tables.sh"
