"""Config sections shared by the files in configs/ (the config edge, not library code).

Each returns a fresh ml_collections.ConfigDict so config files can change it.
"""
import ml_collections


def task(smoke: bool = False) -> ml_collections.ConfigDict:
  """The `task` section (fields of tasks.registry.TaskSpec, plus arith's `generator`); README "Tasks and data files"."""
  c = ml_collections.ConfigDict()
  c.name = "arith"  # Or "countdown" (generated too; `countdown_task`), or a benchmark read from local files:
  # math500, math, gsm8k, aime2024, aime2025, prm800k.
  c.path = ""  # Benchmarks: the published file or directory.
  c.prompt = "auto"  # Benchmarks: "auto" (chat if the tokenizer has a template, else few-shot), "chat", "few_shot".
  c.grader = ""  # "" = the task's own: "exact" (arith), "countdown", "math_verify" (benchmarks).
  c.step_delimiter = ""  # "" = the task's own: "\n" (arith), "\n\n" (benchmarks).
  c.train_size, c.validation_size, c.test_size = (512, 32, 32) if smoke else (20_000, 500, 500)
  c.data_dir = ""  # "" = WORKDIR/data
  c.tokenizer = ""  # "" = data/tokenizer/arith.model
  c.generator = ml_collections.ConfigDict()  # Fields of tasks.synthetic.TaskConfig; empty = defaults.
  return c


def countdown_task(c: ml_collections.ConfigDict, smoke: bool = False) -> None:
  """Switches a `task` section to countdown: fields of tasks.countdown.CountdownConfig under `generator`
  (written out so --config.task.generator.<field>=... overrides them). 2-4 numbers from 1..9: a 0.16M
  policy's pass@1 spans 0.41 (2 numbers) to 0.005 (4) after 600 CPU steps (README); smoke: 2-3 up to 5."""
  c.name = "countdown"
  c.generator = ml_collections.ConfigDict({
      "min_numbers": 2, "max_numbers": 3 if smoke else 4, "min_number": 1,
      "max_number": 5 if smoke else 9, "ops": "+-*", "use_all": True, "max_target": 99,
      "min_solutions": 1, "max_solutions": 0, "seed": 0})


def mesh() -> ml_collections.ConfigDict:
  """Fields of parallel.MeshConfig; num_devices=0 uses every device, n the first n (README "Parallelism")."""
  return ml_collections.ConfigDict({"data": -1, "fsdp": 1, "tensor": 1, "num_devices": 0})


def distributed() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.initialize = False
  c.coordinator_address = ml_collections.FieldReference(None, field_type=str)
  c.num_processes = ml_collections.FieldReference(None, field_type=int)
  c.process_id = ml_collections.FieldReference(None, field_type=int)
  return c


def check_arg(arg: str | None, allowed: tuple[str, ...], file: str) -> str:
  arg = arg or ""
  if arg not in allowed:
    raise ValueError(f"{file}: unknown argument {arg!r}; use one of {', '.join(repr(a) for a in allowed)}")
  return arg


def train(*, steps: int, batch_size: int, learning_rate: float, warmup_steps: int, checkpoint_every: int,
          log_every: int = 50, seq_len: int = 128) -> ml_collections.ConfigDict:
  """The `train` section (fields of ttc_jax.train.TrainConfig) every training config exposes."""
  c = ml_collections.ConfigDict()
  c.steps = steps
  c.batch_size = batch_size
  c.seq_len = seq_len  # 128 fits every default-task example.
  c.grad_accum_steps = 1
  c.learning_rate = learning_rate
  c.warmup_steps = warmup_steps
  c.weight_decay = 0.1
  c.checkpoint_every = checkpoint_every
  c.log_every = log_every
  c.checkpoint_timeout_s = 1800.0  # Longest wait for one checkpoint save; past it the run stops with an error.
  c.input_workers = 0  # grain worker processes making batches ahead of the step; 0: in the training process.
  c.adam_mu_dtype = "float32"  # "bfloat16": Adam's first moment in bf16 (a quarter less optimizer memory).
  c.device_memory_gib = 0.0  # The pre-compile memory check's budget per device; 0: the device's own limit.
  return c


# The revision ORM starts from the reviser: it already reads the revision prompt layout.
_VERIFIER_INIT = {"prm": "policy", "orm": "policy", "revision_orm": "reviser"}


def verifier(kind: str, arg: str) -> ml_collections.ConfigDict:
  """A train_verifier config: the PRM (step labels) or the ORM (correctness), from the policy, or the
  revision ORM (correctness of the reviser's attempts in their chain context), from the reviser."""
  c = ml_collections.ConfigDict()
  c.job = "train_verifier"
  c.seed = {"prm": 3, "orm": 4, "revision_orm": 8}[kind]
  c.verifier = ml_collections.ConfigDict()
  c.verifier.kind = kind
  c.verifier.policy = _VERIFIER_INIT[kind]
  c.verifier.data = ""  # "" = the kind's data (train_verifier: labels/train, samples/train, revisions/chains_train)
  if kind == "prm":
    # Step labels: "rollouts" (MC labels, labels/train), "exact" (arith's exact line labels of samples/train) or
    # "prm800k" (human ratings; verifier.data = the phase{1,2}_<split>.jsonl directory or file, read locally).
    c.verifier.labels = "rollouts"
    c.verifier.prm800k_split = "train"
    c.verifier.prm800k_neutral = 1.0  # Target of a neutral rating: 1.0 counts it as correct (Lightman et al.).
  c.verifier.stage = kind
  c.verifier.heldout_fraction = 0.1
  c.verifier.eval_batch_size = 64
  # Lower learning rate than the policy's: fine-tuning, with only the head new. About 4 epochs
  # of the CPU default's ~1,800 solutions: at 800 steps the PRM overfits (held-out BCE 0.87,
  # worse than predicting the mean label, 0.67; 0.45 at 250 steps; see README "Results").
  # The revision ORM's default data (configs/revision_eval.py:train: 250 problems x 8 attempts) is
  # about as many solutions, hence the same schedule; its prompts hold up to 4 previous attempts,
  # hence the reviser's seq_len 576 (fits 4 attempts of max_new_tokens=96 in context plus one scored).
  c.train = train(steps=250, batch_size=32, learning_rate=1e-3, warmup_steps=25, checkpoint_every=250,
                  seq_len=576 if kind == "revision_orm" else 128)
  if kind != "revision_orm":  # The samples' task: its step delimiter (and PRM800K's prompt layout).
    c.task = task(smoke=arg == "smoke")
  c.mesh = mesh()
  c.distributed = distributed()
  if arg == "smoke":
    c.train.update(steps=10, batch_size=8, warmup_steps=2, checkpoint_every=5, log_every=5)
    c.verifier.eval_batch_size = 8
    if kind == "revision_orm":
      c.train.seq_len = 256  # configs/revision_eval.py:train_smoke samples 32 tokens per attempt.
  elif arg == "gpu":
    c.train.update(steps=3000, batch_size=128, warmup_steps=200)
  return c
