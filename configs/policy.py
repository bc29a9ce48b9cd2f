"""Train the policy on the built-in arithmetic task, then measure its pass@1.

  python -m ttc_jax.main --config=configs/policy.py --workdir=workdirs/demo
  python -m ttc_jax.main --config=configs/policy.py:smoke --workdir=/tmp/smoke   # < 1 min on CPU
  python -m ttc_jax.main --config=configs/policy.py:gpu --workdir=workdirs/gpu

Arguments: "" (CPU default: 0.42M params, 1500 steps, about 10-25 minutes on
2 cores; see README "Results"), "smoke" (tiny, for
tests), "gpu" (a larger policy for one GPU). Override any field with
--config.<section>.<field>=value.
"""
import ml_collections

from ttc_jax import config_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = config_defaults.check_arg(arg, ("", "smoke", "gpu"), "configs/policy.py")
  c = ml_collections.ConfigDict()
  c.job = "train_policy"
  c.seed = 0
  c.stage = "policy"

  c.task = config_defaults.task(smoke=arg == "smoke")

  c.model = ml_collections.ConfigDict()
  c.model.vocab_size = -1  # -1: the tokenizer's vocabulary size.
  c.model.d_model = 96
  c.model.n_layers = 4
  c.model.n_heads = 4
  c.model.n_kv_heads = 2
  c.model.d_ff = 256
  c.model.max_len = 256
  c.model.remat = "none"
  c.model.attention_impl = "auto"  # "xla", "cudnn", "chunked"; auto: cudnn on GPUs where it can run.
  c.model.decode_attention_impl = "auto"  # "xla", "pallas" (reads only the filled cache slots); auto: pallas on GPUs, xla elsewhere.
  c.model.dtype = "float32"

  c.train = config_defaults.train(steps=1500, batch_size=32, learning_rate=3e-3, warmup_steps=100,
                                  checkpoint_every=500)

  c.mesh = config_defaults.mesh()
  c.distributed = config_defaults.distributed()

  c.eval = ml_collections.ConfigDict()
  c.eval.split = "test"
  c.eval.num_problems = -1
  c.eval.samples_per_problem = 16
  c.eval.temperature = 1.0
  c.eval.max_new_tokens = 96
  c.eval.batch_size = 32
  c.eval.show = 5

  if arg == "smoke":
    c.model.update(d_model=32, n_layers=2, n_heads=2, n_kv_heads=1, d_ff=64)
    c.train.update(steps=20, batch_size=8, warmup_steps=2, checkpoint_every=10, log_every=5)
    c.eval.update(num_problems=8, samples_per_problem=2, max_new_tokens=48, batch_size=8, show=2)
  elif arg == "gpu":
    c.task.train_size = 200_000
    c.model.update(d_model=512, n_layers=8, n_heads=8, n_kv_heads=4, d_ff=1536, dtype="bfloat16")
    c.train.update(steps=5000, batch_size=256, learning_rate=1e-3, warmup_steps=200, checkpoint_every=500)
    c.eval.update(samples_per_problem=64, batch_size=64)
  return c


def sweep(arg: str | None = None) -> list[dict]:
  """Learning-rate x model-width ablation (launch/sweep.py expands it)."""
  del arg
  return [{"train.learning_rate": lr, "model.d_model": d} for lr in (1e-3, 3e-3) for d in (96, 128)]
