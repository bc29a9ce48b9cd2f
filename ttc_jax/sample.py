"""Sample from any model reference on the command line: the quickest check that an import works.

  python -m ttc_jax.sample --model hf:/models/Llama-3.2-1B-Instruct \
      --prompt "What is 12 * 13? Think step by step." --chat --num_samples 4 --temperature 0.8

`--model` takes what jobs take: `hf:/dir` (a Hugging Face directory), an export directory
(`job=import_hf` or `job=export` output) or a training stage. `--chat` renders the prompt
as one user turn with the model's own chat template (`--system` adds a system turn);
without it the prompt is encoded as plain text after BOS. Each sample is printed with its
steps, cut where the model's own tokens ended one (`--step_delimiter`, "\\n\\n" by
default: the MATH-style step of open models). The model is placed on all local devices
(`--mesh` as in configs: data,fsdp,tensor sizes).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import jax

from ttc_jax import export
from ttc_jax.decode.generate import generate_from_ids
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.decode.sampler import STOP_NAMES
from ttc_jax.parallel import MeshConfig, make_mesh
from ttc_jax.tokenization.steps import StepFormat


def _mesh_config(spec: str) -> MeshConfig:
  try:
    data, fsdp, tensor = (int(x) for x in spec.split(","))
  except ValueError:
    raise SystemExit(f"--mesh={spec!r}: expected three integers data,fsdp,tensor (-1 = the remaining devices)")
  return MeshConfig(data=data, fsdp=fsdp, tensor=tensor)


def prompt_ids(tokenizer, prompt: str, *, chat: bool, system: str | None) -> list[int]:
  """A chat template's ids are used as rendered (never re-tokenised with extra specials)."""
  if not chat:
    return tokenizer.prompt_ids(prompt)
  messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
  return tokenizer.encode_chat(messages, add_generation_prompt=True)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=__doc__.split("\n", 2)[2])
  p.add_argument("--model", required=True, help="hf:/dir, an export directory or a training stage")
  p.add_argument("--prompt", action="append", required=True, help="repeat for several prompts")
  p.add_argument("--chat", action="store_true", help="render each prompt with the model's chat template")
  p.add_argument("--system", default=None, help="system turn (with --chat)")
  p.add_argument("--num_samples", type=int, default=1)
  p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
  p.add_argument("--top_p", type=float, default=1.0)
  p.add_argument("--max_new_tokens", type=int, default=256)
  p.add_argument("--step_delimiter", default="\n\n", help="text that ends a step (JSON escapes allowed: '\\n')")
  p.add_argument("--stop_at_step", action="store_true", help="end each sample at its first step (as search does)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--mesh", default="-1,1,1", help="data,fsdp,tensor axis sizes")
  p.add_argument("--json", action="store_true", help="print one JSON object per sample instead of text")
  args = p.parse_args(argv)

  delimiter = json.loads(f'"{args.step_delimiter}"') if "\\" in args.step_delimiter else args.step_delimiter
  step_format = StepFormat(delimiter)
  cfg = SamplingConfig(temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
                       stop_at_newline=args.stop_at_step)
  t0 = time.perf_counter()
  mesh = make_mesh(_mesh_config(args.mesh), jax.devices())
  loaded = export.load_model(args.model, mesh)
  tok = loaded.tokenizer
  print(f"loaded {args.model} in {time.perf_counter() - t0:.1f} s on {mesh.devices.size} device(s)", file=sys.stderr)
  encoded = [prompt_ids(tok, text, chat=args.chat, system=args.system) for text in args.prompt]
  t0 = time.perf_counter()
  with jax.set_mesh(mesh):
    results = generate_from_ids(loaded.model, loaded.params, tok, encoded, jax.random.key(args.seed),
                                num_samples=args.num_samples, cfg=cfg, batch_size=len(encoded),
                                step_format=step_format)
  seconds = time.perf_counter() - t0
  tokens = sum(g.num_tokens for gens in results for g in gens)
  for i, gens in enumerate(results):
    for j, g in enumerate(gens):
      steps = step_format.split(tok, g.token_ids)
      if args.json:
        print(json.dumps({"prompt": i, "sample": j, "text": g.text, "steps": steps, "num_tokens": g.num_tokens,
                          "stop_reason": STOP_NAMES[g.stop_reason]}, ensure_ascii=False))
      else:
        print(f"=== prompt {i} sample {j}: {g.num_tokens} tokens, stop {STOP_NAMES[g.stop_reason]}, "
              f"{len(steps)} step(s)\n{g.text}")
  print(f"{tokens} tokens in {seconds:.1f} s (compile included)", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
