"""Entry point and config validation: a bad config fails fast, naming the field."""
import os
import pathlib
import subprocess
import sys

import ml_collections
import pytest

from ttc_jax import config_parsing
from ttc_jax.jobs import common, get_job, train_policy
from ttc_jax.jobs.evaluate_policy import PolicyEvalConfig
from ttc_jax.models import ModelConfig
from ttc_jax.parallel import DistributedConfig, MeshConfig
from ttc_jax.tasks import synthetic
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.tiny import load_config_module
from ttc_jax.train import TrainConfig

REPO = pathlib.Path(__file__).resolve().parents[1]


policy_config = load_config_module("policy")


def run_main(workdir, *overrides, config="configs/policy.py:smoke", timeout=300):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  # One device, as a user would have: drop the 8 fake devices conftest asks for.
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                              if not f.startswith("--xla_force_host_platform_device_count"))
  return subprocess.run([sys.executable, "-m", "ttc_jax.main", f"--config={config}", f"--workdir={workdir}",
                         *overrides], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------ the entry point


@pytest.mark.parametrize("overrides,expected", [
    (["--config.job=nope"], ["nope", "known jobs", "train_policy"]),
    (["--config.train.stepz=3"], ["'train.stepz'", "did you mean 'train.steps'"]),
    (["--config.train.batch_size=10", "--config.train.grad_accum_steps=4"],
     ["train.batch_size=10", "train.grad_accum_steps=4"]),
    (["--config.model.n_heads=3"], ["model.n_heads=3"]),
    (["--config.mesh.data=3"], ["mesh", "mesh.data=3", "1 devices"]),
], ids=["unknown_job", "unknown_field", "batch_vs_accum", "heads", "mesh"])
def test_bad_config_fails_before_training(tmp_path, overrides, expected):
  result = run_main(tmp_path, *overrides)
  assert result.returncode != 0
  for text in expected:
    assert text in result.stderr, f"{text!r} not in stderr:\n{result.stderr[-3000:]}"
  stage = tmp_path / "policy"
  # Nothing trained, compiled or written: no checkpoints, metrics or tensorboard.
  for name in ("checkpoints", "metrics.jsonl", "tensorboard", "model_config.json"):
    assert not (stage / name).exists(), name


def test_get_job():
  assert get_job("train_policy") is train_policy.run
  with pytest.raises(ValueError, match=r"config.job='trian_policy'.*known jobs:.*train_policy"):
    get_job("trian_policy")


# ------------------------------------------------------------------ parse_section / check_sections


def test_unknown_field_names_it_and_suggests():
  with pytest.raises(ValueError, match=r"'train\.stepz' \(did you mean 'steps'\?\)") as e:
    config_parsing.parse_section(TrainConfig, {"steps": 3, "stepz": 3}, "train")
  assert "valid fields of 'train'" in str(e.value) and "learning_rate" in str(e.value)


def test_int_is_coerced_to_float():
  cfg = config_parsing.parse_section(TrainConfig, {"learning_rate": 1, "steps": 7, "warmup_steps": 2}, "train")
  assert cfg.learning_rate == 1.0 and type(cfg.learning_rate) is float
  assert cfg.steps == 7 and type(cfg.steps) is int


@pytest.mark.parametrize("field,value", [("steps", "10"), ("steps", 2.5), ("steps", True), ("learning_rate", "1e-3"),
                                         ("async_checkpoint", 1)])
def test_wrong_type_names_the_field(field, value):
  with pytest.raises(ValueError, match=rf"'train\.{field}' must be"):
    config_parsing.parse_section(TrainConfig, {field: value}, "train")


def test_lists_become_tuples():
  cfg = config_parsing.parse_section(synthetic.TaskConfig, {"operand_maxes": [9, 99, 500],
                                                            "operand_max_weights": [1.0, 1.0, 1.0]},
                                     "task.generator")
  assert cfg.operand_maxes == (9, 99, 500) and isinstance(cfg.operand_maxes, tuple)
  hash(cfg)  # Frozen dataclasses with tuples stay hashable (usable as jit static arguments).
  with pytest.raises(ValueError, match=r"'task\.generator\.operand_maxes' must be a tuple"):
    config_parsing.parse_section(synthetic.TaskConfig, {"operand_maxes": 9}, "task.generator")


def test_parse_section_accepts_config_dicts_and_none():
  section = ml_collections.ConfigDict({"steps": 5, "batch_size": 4, "warmup_steps": 0})
  assert config_parsing.parse_section(TrainConfig, section, "train") == TrainConfig(steps=5, batch_size=4, warmup_steps=0)
  assert config_parsing.parse_section(MeshConfig, None, "mesh") == MeshConfig()


def test_check_sections():
  config_parsing.check_sections({"train": {}, "model": {}}, {"train", "model", "eval"}, "job")
  with pytest.raises(ValueError, match=r"'trian' \(did you mean 'train'\?\) for job 'job'"):
    config_parsing.check_sections({"trian": {}, "model": {}}, {"train", "model"}, "job")


# ------------------------------------------------------------------ configs/policy.py


def test_policy_config_rejects_unknown_argument():
  with pytest.raises(ValueError, match="bogus"):
    policy_config.get_config("bogus")


def _parse_all(config):
  """What train_policy.run parses, without preparing data: every section into its dataclass."""
  config_parsing.check_sections(config, train_policy.SECTIONS, "train_policy")
  spec, task = common.parse_task(config.task)
  return dict(
      spec=spec, task=task,
      train=config_parsing.parse_section(TrainConfig, config.train, "train"),
      model=common.parse_model(config.model, load_tokenizer()),
      eval=config_parsing.parse_section(PolicyEvalConfig, config.eval, "eval"),
      mesh=config_parsing.parse_section(MeshConfig, config.mesh, "mesh"),
      distributed=config_parsing.parse_section(DistributedConfig, config.distributed, "distributed"))


@pytest.mark.parametrize("arg", ["smoke", "", "gpu"])
def test_policy_config_parses(arg):
  parsed = _parse_all(policy_config.get_config(arg))
  assert isinstance(parsed["train"], TrainConfig) and isinstance(parsed["model"], ModelConfig)
  assert parsed["model"].vocab_size == load_tokenizer().vocab_size  # -1 took the tokenizer's size.
  assert parsed["train"].seq_len <= parsed["model"].max_len
  assert parsed["eval"].max_new_tokens < parsed["model"].max_len


def test_smoke_config_is_small():
  parsed = _parse_all(policy_config.get_config("smoke"))
  assert parsed["train"].steps <= 50 and parsed["model"].d_model <= 64
  assert parsed["spec"].train_size <= 1000


def test_sweep_points_are_valid_configs():
  points = policy_config.sweep()
  assert len(points) == len({tuple(sorted(p.items())) for p in points}) > 1
  for point in points:
    config = policy_config.get_config()
    config.lock()  # As main.py loads it: an unknown key would raise.
    for key, value in point.items():
      section, field = key.split(".")
      assert field in config[section], key
      config[section][field] = value
    parsed = _parse_all(config)
    for key, value in point.items():
      section, field = key.split(".")
      assert getattr(parsed[section], field) == value

