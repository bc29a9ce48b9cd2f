"""Config sections shared by the files in configs/ (the config edge, not library code).

Each returns a fresh ml_collections.ConfigDict so config files can change it.
"""
import ml_collections


def task(smoke: bool = False) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = "arith"
  c.train_size, c.validation_size, c.test_size = (512, 32, 32) if smoke else (20_000, 500, 500)
  c.data_dir = ""  # "" = WORKDIR/data
  c.tokenizer = ""  # "" = data/tokenizer/arith.model
  c.generator = ml_collections.ConfigDict()  # Fields of tasks.synthetic.TaskConfig; empty = defaults.
  return c


def mesh() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({"data": -1, "fsdp": 1, "tensor": 1})


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
