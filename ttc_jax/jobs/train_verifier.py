"""Job `train_verifier`: train a PRM (step labels) or an ORM (correctness), initialised from the policy.

Reads the policy stage (model_config.json, tokenizer.model, checkpoints) and
WORKDIR/labels/train (PRM; job label_rollouts) or WORKDIR/samples/train (ORM;
job sample_solutions). The PRM's labels come from `verifier.labels`
(`verify.label_sources`): "rollouts" (Monte Carlo labels, the default), "prm800k"
(PRM800K's human ratings, from the local files `verifier.data` names) or "exact"
(the arith task's exact line labels of WORKDIR/samples/train). Steps are laid out
with the `task` section's step delimiter (and, for PRM800K, its prompt).
The revision ORM (kind "revision_orm") starts from the reviser stage instead and
learns the correctness of the reviser's own attempts, each after the previous
attempts of its chain, from WORKDIR/revisions/chains_train
(job eval_revisions on training problems, configs/revision_eval.py:train).
Writes WORKDIR/<stage> (stage = kind by default):
checkpoints/, metrics.jsonl, tensorboard/, model_config.json, tokenizer.model,
train_summary.json and verifier_eval.json (held-out problems never trained on).
The stage loads like a policy stage (`export.load_model`) and exports with the
export job. Re-running resumes training and skips a finished evaluation.
"""
import dataclasses
import functools
import os
import pathlib
import time

import jax
import numpy as np
from absl import logging

from ttc_jax import config_parsing, export, shards
from ttc_jax.jobs import common, eval_revisions
from ttc_jax.model_refs import hf_path, resolve
from ttc_jax.models import Transformer
from ttc_jax.models.flops import count_params
from ttc_jax.provenance import fingerprint, git_commit, input_fingerprint, read_json_field, write_json
from ttc_jax.tasks import registry
from ttc_jax.tasks.loaders import prm800k
from ttc_jax.tasks.synthetic_task import NAME as ARITH
from ttc_jax.train import TrainConfig, train
from ttc_jax.verify import data as verifier_data
from ttc_jax.verify import label_sources
from ttc_jax.verify.heldout import evaluate_examples, mean_target
from ttc_jax.verify.init_from_policy import policy_initializer
from ttc_jax.verify.losses import value_loss

SECTIONS = {"job", "seed", "task", "verifier", "train", "mesh", "distributed"}
_DEFAULT_DATA = {"prm": "labels/train", "orm": "samples/train", "revision_orm": "revisions/chains_train"}
# Which job writes an input artifact, named in the error when it is missing.
_MAKERS = {"labels": "the label_rollouts job (configs/labels.py)",
           "samples": "the sample_solutions job (configs/samples.py)",
           "revisions": "the eval_revisions job on training problems (configs/revision_eval.py:train)"}
_POLICY_MAKERS = {"reviser": "the train_reviser job (configs/reviser.py)"}


@dataclasses.dataclass(frozen=True)
class VerifierConfig:
  # "prm": soft MC labels at every step; "orm": correctness at the last step; "revision_orm": the
  # ORM of the reviser's chain attempts, each in its revision context.
  kind: str = "prm"
  policy: str = "policy"  # Stage dir under WORKDIR, or a path to a stage / export: the initialisation.
  # PRM step labels (`verify.label_sources`): "rollouts" (MC labels of job label_rollouts), "prm800k"
  # (human ratings from PRM800K's files) or "exact" (arith only: each sampled line checked against
  # the reference computation).
  labels: str = "rollouts"
  # Records under WORKDIR (or a path); "" = labels/train (prm), samples/train (orm, and prm with
  # labels "exact"), revisions/chains_train (revision_orm: an eval_revisions output). labels "prm800k":
  # the phase{1,2}_<split>.jsonl files' directory or one such file (required; nothing is downloaded).
  data: str = ""
  prm800k_split: str = "train"  # labels "prm800k": which files of the directory (phase*_<split>.jsonl).
  # labels "prm800k": the target of a neutral (0) rating; 1.0 counts it as correct, as Lightman et al.
  # do when they score. Ratings 1 and -1 are 1.0 and 0.0.
  prm800k_neutral: float = 1.0
  stage: str = ""  # Output WORKDIR/<stage>; "" = the kind.
  heldout_fraction: float = 0.1  # Last fraction of problems kept out of training, for verifier_eval.json.
  eval_batch_size: int = 64

  def __post_init__(self):
    if self.kind not in _DEFAULT_DATA:
      raise ValueError(f"verifier.kind={self.kind!r} must be one of {', '.join(map(repr, _DEFAULT_DATA))}")
    if not 0 <= self.heldout_fraction < 1:
      raise ValueError(f"verifier.heldout_fraction={self.heldout_fraction} must be in [0, 1)")
    if self.eval_batch_size <= 0:
      raise ValueError(f"verifier.eval_batch_size={self.eval_batch_size} must be positive")
    if self.labels not in label_sources.SOURCES:
      raise ValueError(f"verifier.labels={self.labels!r} must be one of {', '.join(map(repr, label_sources.SOURCES))}")
    if self.labels != "rollouts" and self.kind != "prm":
      raise ValueError(f"verifier.labels={self.labels!r} labels PRM steps; verifier.kind={self.kind!r} "
                       "trains on correctness (leave labels 'rollouts')")
    if self.labels == "prm800k" and not self.data:
      raise ValueError("verifier.data: set it to PRM800K's phase{1,2}_{train,test}.jsonl directory or one file "
                       "(github.com/openai/prm800k, data/); nothing is downloaded")
    if self.prm800k_split not in ("train", "test"):
      raise ValueError(f"verifier.prm800k_split={self.prm800k_split!r} must be 'train' or 'test'")
    if not 0 <= self.prm800k_neutral <= 1:
      raise ValueError(f"verifier.prm800k_neutral={self.prm800k_neutral} must be in [0, 1]")

  @property
  def data_path(self) -> str:
    if not self.data and self.labels == "exact":
      return _DEFAULT_DATA["orm"]  # The sampled solutions themselves: their labels are computed here.
    return self.data or _DEFAULT_DATA[self.kind]


def _read_records(cfg: VerifierConfig, data_dir: str) -> list:
  """The training records (PRM800K: its labelled solutions); a missing artifact raises naming the
  field and the job that writes it, a malformed PRM800K row its file, line and field."""
  field = f"verifier.data={cfg.data_path!r}"
  maker = _MAKERS.get(cfg.data_path.split(os.sep)[0], "the job that writes it")
  if cfg.labels == "prm800k":
    try:
      return prm800k.labelled_solutions(pathlib.Path(data_dir), cfg.prm800k_split)
    except FileNotFoundError as e:
      raise FileNotFoundError(f"{field}: {e} (PRM800K's files: github.com/openai/prm800k, data/)") from None
  if cfg.kind == "revision_orm":
    try:
      return eval_revisions.read_chain_records(data_dir)
    except FileNotFoundError as e:
      raise FileNotFoundError(f"{field}: {e}; run {maker} first") from None
  shards.require_complete(data_dir, field, maker)
  return shards.read_records(data_dir)


def _label(cfg: VerifierConfig, raw: list, task, tokenizer) -> tuple[list[dict], dict]:
  """The training records with the PRM's step labels from `cfg.labels`, and counts for the summary."""
  if cfg.labels == "prm800k":
    return label_sources.prm800k_records(raw, task, tokenizer, neutral=cfg.prm800k_neutral)
  if cfg.labels == "exact":
    return label_sources.exact_records(raw)
  return raw, {}


def run(config, workdir: str) -> None:
  # Parse and check inputs first: a bad field or a missing artifact fails before compiling.
  config_parsing.check_sections(config, SECTIONS, "train_verifier")
  cfg = config_parsing.parse_section(VerifierConfig, config.verifier, "verifier")
  train_cfg = config_parsing.parse_section(TrainConfig, config.train, "train")
  # The task lays out the steps (its delimiter; PRM800K's prompts too); no section = arith.
  task = common.make_task(config.task if "task" in config else {}, workdir)
  if cfg.labels == "exact" and task.name != ARITH:
    raise ValueError(f"verifier.labels='exact' checks lines against the built-in {ARITH} task's reference "
                     f"computation; task.name={task.name!r} has none (use labels 'rollouts' or 'prm800k')")
  data_dir = resolve(workdir, cfg.data_path)
  raw_records = _read_records(cfg, data_dir)
  policy_dir = resolve(workdir, cfg.policy)
  maker = _POLICY_MAKERS.get(cfg.policy, "the train_policy job (configs/policy.py)")
  policy_cfg = export.model_config_of(policy_dir, f"verifier.policy={cfg.policy!r}", f"run {maker} first")
  tokenizer = export.tokenizer_in(hf_path(policy_dir))
  records, label_stats = _label(cfg, raw_records, task, tokenizer)
  # max_len only documents the longest context (revision prompts are longer than the policy's).
  model_cfg = dataclasses.replace(policy_cfg, scalar_head=True, lm_head=False,
                                  max_len=max(policy_cfg.max_len, train_cfg.seq_len))
  model = Transformer(model_cfg)
  identity = fingerprint({"verifier": dataclasses.asdict(cfg), "model": dataclasses.asdict(model_cfg),
                          "train": dataclasses.asdict(train_cfg), "seed": config.seed,
                          "data": input_fingerprint(data_dir),
                          "policy": read_json_field(os.path.join(hf_path(policy_dir), "train_summary.json"),
                                                    "model_fingerprint")})

  train_records, heldout_records = verifier_data.split_heldout(records, cfg.heldout_fraction)
  build = verifier_data.EXAMPLE_BUILDERS[cfg.kind]
  # The ttc layout writes the task's delimiter after every step, as the jobs that score with it do: the one
  # the samples' spec.json records (PRM800K: the task section's); revision chains write attempts as lines.
  if cfg.kind != "revision_orm":
    steps = task.step_format if cfg.labels == "prm800k" else registry.samples_step_format(data_dir, workdir)
    build = functools.partial(build, step_format=steps)
  train_examples, skipped = build(train_records, tokenizer, train_cfg.seq_len)
  heldout_examples, heldout_skipped = build(heldout_records, tokenizer, train_cfg.seq_len)
  if not train_examples:
    raise ValueError(f"no {cfg.kind.upper()} training examples in {data_dir} ({skipped} longer than "
                     f"train.seq_len={train_cfg.seq_len}, the rest have no labelled steps)")
  logging.info("%s (%s labels): %d train examples (%d problems), %d held out (%d problems), %d skipped as too "
               "long%s", cfg.kind.upper(), cfg.labels if cfg.kind == "prm" else "correctness", len(train_examples),
               len(train_records), len(heldout_examples), len(heldout_records), skipped + heldout_skipped,
               f"; {label_stats}" if label_stats else "")

  mesh = common.setup_mesh(config)
  with common.training_stage(workdir, cfg.stage or cfg.kind, model_cfg) as out_dir:
    write_json(os.path.join(out_dir, "model_config.json"), dataclasses.asdict(model_cfg))
    export.copy_tokenizer(hf_path(policy_dir), out_dir)
    data_iter = verifier_data.make_iterator(train_examples, batch_size=train_cfg.batch_size, seed=config.seed,
                                            shard_index=jax.process_index(), shard_count=jax.process_count(),
                                            workers=train_cfg.input_workers)
    dummy = np.zeros((1, train_cfg.seq_len), np.int32)
    init_fn = lambda rng: model.init(rng, dummy)

    initial_params = policy_initializer(policy_dir, mesh, init_fn, jax.random.key(config.seed))
    start = time.time()
    state = train(init_fn=init_fn, loss_fn=value_loss(model), cfg=train_cfg, data_iter=data_iter, mesh=mesh,
                  workdir=out_dir, seed=config.seed, initial_params=initial_params, model_cfg=model_cfg)
    wall = time.time() - start
    summary_path = os.path.join(out_dir, "train_summary.json")
    # A no-op re-run keeps the summary (and timing) of the run that trained.
    if jax.process_index() == 0 and not common.is_current(summary_path, None, identity, steps=train_cfg.steps):
      write_json(summary_path, {
          "git_commit": git_commit(), "kind": cfg.kind, "labels": cfg.labels, "label_stats": label_stats,
          "params": count_params(model_cfg), "steps": train_cfg.steps,
          "examples": len(train_examples), "skipped": skipped, "train_problems": len(train_records),
          "heldout_problems": len(heldout_records), "targets": int(sum(e["value_mask"].sum() for e in train_examples)),
          "mean_target": mean_target(train_examples), "model_fingerprint": identity, "data": data_dir,
          "policy": policy_dir, "wall_time_s": wall,
          "devices": jax.device_count(), "verifier": dataclasses.asdict(cfg), "model": dataclasses.asdict(model_cfg),
          "train": dataclasses.asdict(train_cfg)})

    eval_path = os.path.join(out_dir, "verifier_eval.json")
    if common.is_current(eval_path, train_cfg.steps, identity):
      logging.info("Held-out evaluation already done: %s", eval_path)
      return
    with jax.set_mesh(mesh):
      result = evaluate_examples(model, state.params, heldout_examples, batch_size=cfg.eval_batch_size,
                                 train_mean_target=mean_target(train_examples))
    result.update(step=train_cfg.steps, model_fingerprint=identity, kind=cfg.kind, labels=cfg.labels,
                  skipped=heldout_skipped, heldout_problems=len(heldout_records), git_commit=git_commit())
    if jax.process_index() == 0:
      write_json(eval_path, result)
    logging.info("Held-out %s: %s -> %s", cfg.kind.upper(),
                 ", ".join(f"{k}={v:.4f}" for k, v in result.items() if isinstance(v, float)), eval_path)
