// `refrag train …`: token streams and the pre-training stages. Long runs show progress, save atomic
// checkpoints, stop cleanly on Ctrl-C (saving first) and resume when started again with the same --out.
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { parseLlamaConfig, parseRobertaConfig, type JsonObject } from "../io/config.js";
import { SHAPES } from "../models/presets.js";
import { loadLlama, replaceDecoder } from "../models/load.js";
import type { RagExample } from "../retrieval/rag_examples.js";
import { choice, positiveInt, positiveNumber, unitInterval } from "./args.js";
import { registerDenseCommand } from "./train_dense.js";
import { SPECIAL_TOKENS, Tokenizer } from "../tokenizer/index.js";
import { defaultTokenizerPath } from "../tokenizer/pipeline.js";
import { CURRICULUM_KINDS } from "../train/curriculum.js";
import type { StageIO, StepInfo, TrainingState } from "../train/loop.js";
import {
  continualPretrain,
  DEFAULT_CONTINUATION,
  DEFAULT_MAX_CHUNKS,
  DEFAULT_MAX_PASSAGES,
  hasCheckpoint,
  initRefrag,
  loadRefrag,
  mixedInput,
  reconstruct,
  withChunkSize,
  type RefragStageConfig,
} from "../train/stages/refrag.js";
import type { RefragModel } from "../models/refrag.js";
import { Rng } from "../engine/random.js";
import { repeatTokenStream } from "../train/repeats.js";
import { pretrainDecoder, pretrainEncoder, type LmStageConfig } from "../train/stages/pretrain.js";
import {
  buildTokenStream,
  loadTokenStream,
  saveTokenStream,
  sha256OfFile,
  type Split,
} from "../train/tokens.js";

function stopOnSignal(): () => boolean {
  let stop = false;
  process.once("SIGINT", () => {
    console.error("\nstopping after this step (checkpoint first); Ctrl-C again to abort");
    stop = true;
    process.once("SIGINT", () => process.exit(130));
  });
  return () => stop;
}

function logger(tokensPerStep: number): (i: StepInfo) => void {
  return (i) =>
    console.error(
      `step ${i.step + 1}  loss ${i.loss.toFixed(4)}  lr ${i.lr.toExponential(2)}  |g| ${i.gradNorm.toFixed(2)}  ${i.ms.toFixed(0)} ms  ${((tokensPerStep / i.ms) * 1000).toFixed(0)} tok/s`,
    );
}

const logValidation = (step: number, loss: number): void =>
  console.error(`step ${step}  validation loss ${loss.toFixed(4)}`);

export function registerTrainCommands(program: Command): void {
  const train = program.command("train").description("training: token streams and stages (resumable)");
  registerRefragStageCommands(train);
  registerPolicyCommand(train);
  registerFinetuneCommand(train);
  registerDenseCommand(train);

  train
    .command("tokens")
    .description("tokenise one split of a JSONL corpus into a uint16 token stream")
    .requiredOption("--corpus <paths...>", "JSONL files or folders")
    .requiredOption("--out <file>", "output .u16 file (a .json description is written beside it)")
    .option("--split <split>", "train, validation or test", "train")
    .option("--tokenizer <file>", "tokenizer.json", defaultTokenizerPath())
    .option(
      "--exclude <file>",
      "eval-evidence.json from `refrag datasets build`: keep evaluation evidence out",
    )
    .action((o: { corpus: string[]; out: string; split: string; tokenizer: string; exclude?: string }) => {
      if (!["train", "validation", "test"].includes(o.split))
        throw new Error(`--split must be train, validation or test, got "${o.split}"`);
      const tok = Tokenizer.fromFile(o.tokenizer);
      const t0 = performance.now();
      let exclude: Set<string> | undefined;
      if (o.exclude !== undefined) {
        const ev = JSON.parse(readFileSync(o.exclude, "utf8")) as { doc_ids?: unknown };
        if (!Array.isArray(ev.doc_ids))
          throw new Error(`${o.exclude}: expected {"doc_ids": [...]} (eval-evidence.json)`);
        exclude = new Set(ev.doc_ids as string[]);
      }
      const s = buildTokenStream(o.corpus, o.split as Split, tok, sha256OfFile(o.tokenizer), {
        exclude,
        progress: (d, n) => process.stderr.write(`\r${d} documents, ${n} tokens`),
      });
      saveTokenStream(o.out, s);
      console.error(
        `\nwrote ${o.out}: ${s.info.tokens} tokens from ${s.info.documents} documents in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    });

  train
    .command("repeats")
    .description(
      "a copy-rich token stream: segments of a stream, some followed at once by their exact repeat (teaches copying)",
    )
    .requiredOption("--data <file>", "source .u16 stream (`train tokens`)")
    .requiredOption("--out <file>", "output .u16 file (a .json description is written beside it)")
    .requiredOption("--tokens <n>", "tokens to write")
    .option("--repeat <p>", "probability that a segment is followed by its repeat", "0.5")
    .option("--random <p>", "probability that a segment is random ordinary ids instead of text", "0")
    .option("--min <n>", "shortest segment", "8")
    .option("--max <n>", "longest segment", "64")
    .option("--tokenizer <file>", "tokenizer.json (vocabulary of the random ids)", defaultTokenizerPath())
    .option("--seed <n>", "random seed", "1")
    .action(
      (o: {
        data: string;
        out: string;
        tokens: string;
        repeat: string;
        random: string;
        min: string;
        max: string;
        tokenizer: string;
        seed: string;
      }) => {
        const source = loadTokenStream(o.data);
        const tok = Tokenizer.fromFile(o.tokenizer);
        if (sha256OfFile(o.tokenizer) !== source.info.tokenizerSha256)
          throw new Error(`${o.tokenizer} is not the tokenizer ${o.data} was made with (sha256 differs)`);
        const seed = positiveInt("--seed", o.seed);
        const s = repeatTokenStream(
          source,
          {
            tokens: positiveInt("--tokens", o.tokens),
            repeat: unitInterval("--repeat", o.repeat),
            random: unitInterval("--random", o.random),
            min: positiveInt("--min", o.min),
            max: positiveInt("--max", o.max),
            firstOrdinary: SPECIAL_TOKENS.length,
            vocab: tok.vocabSize,
          },
          new Rng(seed),
          seed,
        );
        saveTokenStream(o.out, s);
        console.error(
          `wrote ${o.out}: ${s.info.tokens} tokens, ${(100 * (s.info.repeats?.copiedFraction ?? 0)).toFixed(1)}% of them repeats`,
        );
      },
    );

  pretrainCommand(train, {
    name: "decoder",
    description: "pre-train the LLaMA decoder on next-token prediction",
    batch: "8",
    seq: "256",
    run: async (o, tok, c, io) => {
      if (o.embeddingsFrom !== undefined) throw new Error("--embeddings-from is for `train encoder`");
      const validation = o.valid ? { stream: loadTokenStream(o.valid).tokens } : undefined;
      const stream = loadTokenStream(o.data).tokens;
      if (o.from !== undefined) {
        // A later phase: the architecture is the checkpoint's, the weights its starting point.
        const init = await loadLlama(o.from);
        return pretrainDecoder(init.config, stream, c, io, { init, validation });
      }
      const d = SHAPES.shipped.decoder;
      const raw = o.config
        ? JSON.parse(readFileSync(o.config, "utf8"))
        : {
            model_type: "llama",
            vocab_size: tok.vocabSize,
            hidden_size: d.hidden,
            num_hidden_layers: d.layers,
            num_attention_heads: d.heads,
            num_key_value_heads: d.kvHeads,
            intermediate_size: d.intermediate,
            max_position_embeddings: 4096,
            rms_norm_eps: 1e-6,
            tie_word_embeddings: true,
            bos_token_id: tok.tokenToId("<|bos|>"),
            eos_token_id: tok.tokenToId("<|eos|>"),
            pad_token_id: tok.tokenToId("<|pad|>"),
          };
      return pretrainDecoder(parseLlamaConfig(raw, o.config ?? "shipped decoder"), stream, c, io, {
        validation,
      });
    },
  });

  pretrainCommand(train, {
    name: "encoder",
    description: "pre-train the RoBERTa encoder with masked-language modelling",
    batch: "64",
    seq: "64",
    run: async (o, tok, c, io) => {
      const e = SHAPES.shipped.encoder;
      const raw = o.config
        ? JSON.parse(readFileSync(o.config, "utf8"))
        : {
            model_type: "roberta",
            architectures: ["RobertaForMaskedLM"],
            vocab_size: tok.vocabSize,
            hidden_size: e.hidden,
            num_hidden_layers: e.layers,
            num_attention_heads: e.heads,
            intermediate_size: e.intermediate,
            max_position_embeddings: 130,
            type_vocab_size: 1,
            layer_norm_eps: 1e-5,
            pad_token_id: tok.tokenToId("<|pad|>") ?? 0,
            bos_token_id: tok.tokenToId("<|bos|>"),
            eos_token_id: tok.tokenToId("<|eos|>"),
          };
      const mask = tok.tokenToId("<|mask|>");
      if (mask === undefined) throw new Error("the tokenizer has no <|mask|> token");
      const config = parseRobertaConfig(raw, o.config ?? "shipped encoder");
      // Random replacements in masking draw from the ordinary tokens, after the special ones.
      let embeddings: Float32Array | undefined;
      if (o.embeddingsFrom !== undefined) {
        const dec = await loadLlama(o.embeddingsFrom);
        if (dec.config.vocab_size !== config.vocab_size || dec.config.hidden_size !== config.hidden_size)
          throw new Error(
            `--embeddings-from ${o.embeddingsFrom}: the decoder's vocabulary × width is ${dec.config.vocab_size} × ${dec.config.hidden_size}, the encoder's ${config.vocab_size} × ${config.hidden_size}`,
          );
        embeddings = dec.model.embed_tokens.weight.data;
      }
      return pretrainEncoder(config, loadTokenStream(o.data).tokens, mask, SPECIAL_TOKENS.length, c, io, {
        embeddings,
      });
    },
  });
}

interface PretrainFlags {
  data: string;
  out: string;
  config?: string;
  steps: string;
  batch: string;
  seq: string;
  lr: string;
  saveEvery: string;
  seed: string;
  tokenizer: string;
  from?: string;
  embeddingsFrom?: string;
  valid?: string;
  evalEvery?: string;
}

/** A pre-training command: the shared options, parsing, progress and Ctrl-C handling around `run`. */
function pretrainCommand(
  train: Command,
  spec: {
    name: string;
    description: string;
    batch: string;
    seq: string;
    run: (o: PretrainFlags, tok: Tokenizer, c: LmStageConfig, io: StageIO) => Promise<TrainingState>;
  },
): void {
  train
    .command(spec.name)
    .description(spec.description)
    .requiredOption("--data <file>", "training token stream (.u16)")
    .requiredOption("--out <dir>", "checkpoint folder (resumed when it holds this run)")
    .option("--config <file>", "config.json of the model (default: the shipped shape)")
    .option("--steps <n>", "optimizer steps", "2000")
    .option("--batch <n>", "sequences per step", spec.batch)
    .option("--seq <n>", "tokens per sequence", spec.seq)
    .option("--lr <x>", "peak learning rate", "1e-3")
    .option("--save-every <n>", "checkpoint interval in steps", "100")
    .option("--seed <n>", "seed", "1")
    .option("--tokenizer <file>", "tokenizer.json stored with the checkpoint", defaultTokenizerPath())
    .option("--valid <file>", "validation token stream (.u16): its loss is measured and saved with the run")
    .option("--eval-every <n>", "validation interval in steps (default: the checkpoint interval)")
    .option(
      "--from <dir>",
      "continue from this checkpoint's weights (decoder only, or a REFRAG checkpoint's decoder; fresh optimizer)",
    )
    .option(
      "--embeddings-from <dir>",
      "encoder only: start the word embeddings from this decoder checkpoint's (same tokenizer and width)",
    )
    .action(async (o: PretrainFlags) => {
      const tok = Tokenizer.fromFile(o.tokenizer);
      const c: LmStageConfig = {
        steps: positiveInt("--steps", o.steps),
        batch: positiveInt("--batch", o.batch),
        seqLen: positiveInt("--seq", o.seq),
        lr: positiveNumber("--lr", o.lr),
        saveEvery: positiveInt("--save-every", o.saveEvery),
        evalEvery: o.evalEvery === undefined ? undefined : positiveInt("--eval-every", o.evalEvery),
        seed: positiveInt("--seed", o.seed),
        logEvery: 10,
      };
      const state = await spec.run(o, tok, c, {
        out: o.out,
        tokenizerJson: readFileSync(o.tokenizer, "utf8"),
        log: logger(c.batch * c.seqLen),
        logValidation: (step, loss) => console.error(`step ${step}  validation loss ${loss.toFixed(4)}`),
        shouldStop: stopOnSignal(),
      });
      console.error(`${o.out}: step ${state.step}/${state.steps}`);
    });
}

interface RefragStageFlags {
  data: string;
  out: string;
  from?: string;
  encoder?: string;
  encoderConfig?: string;
  decoder?: string;
  k?: string;
  steps: string;
  lr: string;
  maxChunks: string;
  tokens: string;
  continuation: string;
  expand: string;
  curriculum: string;
  curriculumStages: string;
  maxPassages: string;
  trainDecoder?: boolean;
  freezeEncoder?: boolean;
  saveEvery: string;
  seed: string;
  tokenizer: string;
  valid?: string;
  evalEvery?: string;
}

/** Flags that say where a REFRAG stage's model comes from. */
interface StartFlags {
  out: string;
  from?: string;
  encoder?: string;
  encoderConfig?: string;
  decoder?: string;
  k?: string;
  seed: string;
}

/**
 * The model a REFRAG stage starts from, and the folder its tokenizer comes from: the run's own checkpoint
 * when it exists (resume), else --from (its decoder replaced by --decoder's when given; re-chunked when --k
 * differs), else a new model from --decoder and
 * --encoder (a pre-trained encoder) or --encoder-config (a new encoder with the decoder's word embeddings).
 */
async function startingModel(o: StartFlags): Promise<{ model: RefragModel; dir: string }> {
  if (hasCheckpoint(o.out)) return { model: await loadRefrag(o.out), dir: o.out };
  if (o.from !== undefined) {
    if (o.encoder !== undefined || o.encoderConfig !== undefined)
      throw new Error("--from takes the encoder from the REFRAG checkpoint: drop --encoder/--encoder-config");
    const loaded = await loadRefrag(o.from);
    // --decoder with --from: the checkpoint with its decoder replaced (e.g. one trained further alone).
    if (o.decoder !== undefined) await replaceDecoder(loaded, o.decoder);
    const model = o.k === undefined ? loaded : withChunkSize(loaded, positiveInt("--k", o.k));
    return { model, dir: o.from };
  }
  if (o.decoder === undefined || (o.encoder === undefined) === (o.encoderConfig === undefined))
    throw new Error(
      "give --from <refrag checkpoint>, or --decoder <dir> with one of --encoder <dir> and --encoder-config <file>",
    );
  const encoder = o.encoder ?? {
    config: JSON.parse(readFileSync(o.encoderConfig as string, "utf8")) as JsonObject,
  };
  const k = positiveInt("--k", o.k ?? "16");
  return { model: await initRefrag(encoder, o.decoder, k, positiveInt("--seed", o.seed)), dir: o.decoder };
}

/** `refrag train reconstruct|cpt`: REFRAG's own stages over a REFRAG checkpoint (or encoder + decoder). */
export function registerRefragStageCommands(train: Command): void {
  for (const stage of ["reconstruct", "cpt", "mixed"] as const) {
    train
      .command(stage)
      .description(
        {
          reconstruct:
            "stage 1: encoder + projector (and the decoder, with --train-decoder) learn to reconstruct chunks from their vectors (curriculum)",
          cpt: "stage 2: continual pre-training, next-paragraph prediction from chunk vectors (curriculum)",
          mixed: "stage 3: continual pre-training with a fraction of chunks read as raw tokens (mixed input)",
        }[stage],
      )
      .requiredOption("--data <file>", "training token stream (.u16)")
      .requiredOption("--out <dir>", "checkpoint folder (resumed when it holds this run)")
      .option("--from <dir>", "REFRAG checkpoint to start from (e.g. the reconstruction output)")
      .option("--encoder <dir>", "pre-trained encoder checkpoint (with --decoder, instead of --from)")
      .option(
        "--encoder-config <file>",
        "instead of --encoder: a new encoder of this shape (RoBERTa config.json), word embeddings from the decoder's",
      )
      .option(
        "--decoder <dir>",
        "pre-trained decoder checkpoint (with --from: replaces the REFRAG checkpoint's decoder)",
      )
      .option("--k <n>", "tokens per chunk (default 16; with --from, a different k re-chunks the model)")
      .option("--steps <n>", "optimizer steps", "2000")
      .option("--lr <x>", "peak learning rate", stage === "reconstruct" ? "2e-4" : "5e-5")
      .option(
        "--max-chunks <n>",
        "largest number of chunks per sequence (curriculum top; 128 at k = 16 is the evaluated s = 2048)",
        String(DEFAULT_MAX_CHUNKS),
      )
      .option("--tokens <n>", "tokens per step", "4096")
      .option(
        "--continuation <n>",
        "cpt / mixed: tokens predicted after the context",
        String(DEFAULT_CONTINUATION),
      )
      .option("--expand <p>", "mixed: fraction of chunks read as raw tokens", "0.1")
      .option(
        "--curriculum <kind>",
        `${CURRICULUM_KINDS.join(" | ")}: the paper's Table 8 mixture, or every step at --max-chunks`,
        "table8",
      )
      .option("--curriculum-stages <n>", "curriculum stages (Table 8 has 9)", "9")
      .option("--max-passages <n>", "most passages a context is cut into", String(DEFAULT_MAX_PASSAGES))
      .option("--train-decoder", "reconstruct: train the decoder too (default: frozen, as in the paper)")
      .option("--freeze-encoder", "keep the encoder's weights (the projector and the rest still train)")
      .option("--save-every <n>", "checkpoint interval in steps", "100")
      .option("--seed <n>", "seed", "1")
      .option("--tokenizer <file>", "tokenizer.json stored with the checkpoint", defaultTokenizerPath())
      .option(
        "--valid <file>",
        "validation token stream (.u16): loss on fixed sequences at --max-chunks, saved with the run",
      )
      .option("--eval-every <n>", "validation interval in steps (default: the checkpoint interval)")
      .action(async (o: RefragStageFlags) => {
        const curriculum = choice("--curriculum", o.curriculum, CURRICULUM_KINDS);
        const { model } = await startingModel(o);
        const stream = loadTokenStream(o.data);
        const c: RefragStageConfig = {
          steps: positiveInt("--steps", o.steps),
          lr: positiveNumber("--lr", o.lr),
          maxChunks: positiveInt("--max-chunks", o.maxChunks),
          tokensPerStep: positiveInt("--tokens", o.tokens),
          continuation: positiveInt("--continuation", o.continuation),
          expandFraction: unitInterval("--expand", o.expand),
          curriculum,
          curriculumStages: positiveInt("--curriculum-stages", o.curriculumStages),
          maxPassages: positiveInt("--max-passages", o.maxPassages),
          trainDecoder: o.trainDecoder === true,
          freezeEncoder: o.freezeEncoder === true,
          saveEvery: positiveInt("--save-every", o.saveEvery),
          evalEvery: o.evalEvery === undefined ? undefined : positiveInt("--eval-every", o.evalEvery),
          seed: positiveInt("--seed", o.seed),
          logEvery: 10,
        };
        const validation = o.valid === undefined ? undefined : { stream: loadTokenStream(o.valid).tokens };
        const run = { reconstruct, cpt: continualPretrain, mixed: mixedInput }[stage];
        const state = await run(
          model,
          stream.tokens,
          c,
          {
            out: o.out,
            tokenizerJson: readFileSync(o.tokenizer, "utf8"),
            log: logger(c.tokensPerStep),
            logValidation,
            shouldStop: stopOnSignal(),
          },
          validation,
        );
        console.error(`${o.out}: step ${state.step}/${state.steps}`);
      });
  }
}

interface PolicyFlags {
  data: string;
  out: string;
  from: string;
  steps: string;
  lr: string;
  chunks: string;
  continuation: string;
  expand: string;
  contexts: string;
  group: string;
  clip: string;
  saveEvery: string;
  seed: string;
  tokenizer: string;
}

/** `refrag train policy`: the RL selection policy (GRPO with PPO clipping) on a frozen REFRAG model. */
export function registerPolicyCommand(train: Command): void {
  train
    .command("policy")
    .description(
      "stage 4: RL selection policy (GRPO, PPO clipping); reward = −log-perplexity of the continuation",
    )
    .requiredOption("--data <file>", "training token stream (.u16)")
    .requiredOption("--out <dir>", "checkpoint folder (resumed when it holds this run)")
    .requiredOption("--from <dir>", "REFRAG checkpoint (after mixed-input training)")
    .option("--steps <n>", "optimizer steps (2 per rollout batch)", "400")
    .option("--lr <x>", "peak learning rate", "1e-4")
    .option(
      "--chunks <n>",
      "chunks per context (128 at k = 16 is the evaluated s = 2048)",
      String(DEFAULT_MAX_CHUNKS),
    )
    .option("--continuation <n>", "continuation tokens scored", String(DEFAULT_CONTINUATION))
    .option("--expand <p>", "fraction of chunks expanded per selection", "0.1")
    .option("--contexts <n>", "contexts per rollout batch", "4")
    .option("--group <n>", "selections per context (G)", "4")
    .option("--clip <eps>", "PPO clipping ε", "0.2")
    .option("--save-every <n>", "checkpoint interval in steps (even)", "20")
    .option("--seed <n>", "seed", "1")
    .option("--tokenizer <file>", "tokenizer.json stored with the checkpoint", defaultTokenizerPath())
    .action(async (o: PolicyFlags) => {
      const { trainPolicy, withPolicy } = await import("../train/stages/policy.js");
      const base = await loadRefrag(hasCheckpoint(o.out) ? o.out : o.from);
      const model = base.policy === null ? withPolicy(base) : base;
      const stream = loadTokenStream(o.data);
      const c = {
        steps: positiveInt("--steps", o.steps),
        lr: positiveNumber("--lr", o.lr),
        contextChunks: positiveInt("--chunks", o.chunks),
        continuation: positiveInt("--continuation", o.continuation),
        expandFraction: unitInterval("--expand", o.expand),
        contexts: positiveInt("--contexts", o.contexts),
        group: positiveInt("--group", o.group),
        clip: positiveNumber("--clip", o.clip),
        saveEvery: positiveInt("--save-every", o.saveEvery),
        seed: positiveInt("--seed", o.seed),
        weightDecay: 0,
        logEvery: 10,
      };
      const state = await trainPolicy(model, stream.tokens, c, {
        out: o.out,
        tokenizerJson: readFileSync(o.tokenizer, "utf8"),
        log: (i) =>
          console.error(
            `step ${i.step + 1}  lr ${i.lr.toExponential(2)}  |g| ${i.gradNorm.toFixed(3)}  ${i.ms.toFixed(0)} ms`,
          ),
        shouldStop: stopOnSignal(),
      });
      const r = state.rewards;
      console.error(
        `${o.out}: step ${state.step}/${state.steps}; mean reward ${r[0]?.toFixed(4)} → ${r[r.length - 1]?.toFixed(4)}`,
      );
    });
}

interface FinetuneFlags {
  data: string;
  out: string;
  from?: string;
  encoder?: string;
  encoderConfig?: string;
  decoder?: string;
  k?: string;
  steps: string;
  lr: string;
  batch: string;
  expand: string;
  select: string;
  saveEvery: string;
  seed: string;
  valid?: string;
  evalEvery?: string;
}

/** `refrag train finetune`: RAG fine-tuning on question + passages -> answer examples. */
export function registerFinetuneCommand(train: Command): void {
  train
    .command("finetune")
    .description("fine-tune on RAG examples (`refrag index examples`): answer from compressed passages")
    .requiredOption("--data <file>", "JSONL of {question, passages, answers}")
    .requiredOption("--out <dir>", "checkpoint folder (resumed when it holds this run)")
    .option("--from <dir>", "REFRAG checkpoint (after mixed-input or policy training)")
    .option(
      "--encoder <dir>",
      "with --decoder, instead of --from: a new model from pre-trained parts (with --expand 1 this is the full-context baseline, every passage read as raw tokens)",
    )
    .option(
      "--encoder-config <file>",
      "instead of --encoder: a new encoder of this shape, word embeddings from the decoder's",
    )
    .option(
      "--decoder <dir>",
      "pre-trained decoder checkpoint (with --encoder or --encoder-config; with --from: replaces its decoder)",
    )
    .option("--k <n>", "tokens per chunk (default 16; with --from, a different k re-chunks the model)")
    .option("--steps <n>", "optimizer steps", "1000")
    .option("--lr <x>", "peak learning rate (the paper's SFT: 2e-5)", "2e-5")
    .option("--batch <n>", "examples per step", "8")
    .option("--expand <p>", "fraction of chunks read as raw tokens", "0.1")
    .option(
      "--select <rule>",
      "which chunks are read raw: random, or query (the chunks sharing the question's words, as `--select query` reads at inference)",
      "random",
    )
    .option("--save-every <n>", "checkpoint interval in steps", "100")
    .option("--seed <n>", "seed", "1")
    .option(
      "--valid <file>",
      "held-out RAG examples (JSONL): their answer loss is measured and saved with the run",
    )
    .option("--eval-every <n>", "validation interval in steps (default: the checkpoint interval)")
    .action(async (o: FinetuneFlags) => {
      const { finetune, FINETUNE_SELECTIONS } = await import("../train/stages/finetune.js");
      const select = choice("--select", o.select, FINETUNE_SELECTIONS);
      const { readLines } = await import("../data/derived/build.js");
      const { model, dir: from } = await startingModel(o);
      const tokenizerJson = readFileSync(`${from}/tokenizer.json`, "utf8");
      const tokenizer = Tokenizer.fromFile(`${from}/tokenizer.json`);
      const examples = readLines<RagExample>(o.data);
      const c = {
        steps: positiveInt("--steps", o.steps),
        lr: positiveNumber("--lr", o.lr),
        batch: positiveInt("--batch", o.batch),
        expandFraction: unitInterval("--expand", o.expand),
        select,
        saveEvery: positiveInt("--save-every", o.saveEvery),
        evalEvery: o.evalEvery === undefined ? undefined : positiveInt("--eval-every", o.evalEvery),
        seed: positiveInt("--seed", o.seed),
        logEvery: 10,
      };
      const validation = o.valid === undefined ? undefined : readLines<RagExample>(o.valid);
      const state = await finetune(
        model,
        tokenizer,
        examples,
        c,
        {
          out: o.out,
          tokenizerJson,
          log: (i) =>
            console.error(
              `step ${i.step + 1}  loss ${i.loss.toFixed(4)}  lr ${i.lr.toExponential(2)}  |g| ${i.gradNorm.toFixed(2)}  ${i.ms.toFixed(0)} ms`,
            ),
          logValidation,
          shouldStop: stopOnSignal(),
        },
        validation,
      );
      console.error(`${o.out}: step ${state.step}/${state.steps}`);
    });
}
