"""Job `train_reviser`: fine-tune the policy into the revision model on revision trajectories.

Reads the policy stage (model_config.json, tokenizer.model, checkpoints) and the
trajectories of WORKDIR/revisions/data/trajectories.array_record (job revision_data)
through grain's ArrayRecordDataSource. The revision model is the policy's
network, initialised from it, trained with the shared loop on next-token loss
over the final (correct) attempt only; the previous attempts are context.
Writes WORKDIR/<stage> ("reviser" by default) like a policy stage: checkpoints/,
metrics.jsonl, tensorboard/, model_config.json, tokenizer.model,
train_summary.json; it loads with `export.load_model`.

Training length: at most `reviser.epochs` passes over the training examples (default
one; more passes memorise the targets and cost the first attempt, README "Revisions on
a 2-core CPU"): train.steps = min(train.steps, ceil(epochs x examples / batch_size)),
warmup scaled with it; train_summary.json records both and the epochs trained.

reviser_eval.json, the held-out checks (`revise/heldout.py`): the loss of the reviser and
of the policy it started from on the trajectories of the last `heldout_fraction` of
problems (never trained on), and the gate: both models' first-attempt pass@1 on
`check_problems` problems of the task's `check_split`, with a paired bootstrap interval.
Re-running resumes training and skips a finished evaluation.
"""
import dataclasses
import math
import os
import time

import jax
import numpy as np
from absl import logging

from ttc_jax import config_parsing, export
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.jobs import common
from ttc_jax.model_refs import hf_path, resolve
from ttc_jax.models import Transformer
from ttc_jax.models.flops import count_params
from ttc_jax.provenance import fingerprint, git_commit, input_fingerprint, read_json_field, write_json
from ttc_jax.revise import dataset
from ttc_jax.revise import heldout as rheldout
from ttc_jax.revise.data import revision_examples
from ttc_jax.revise.heldout import evaluate_heldout, split_trajectories
from ttc_jax.revise.trajectories import k_distribution
from ttc_jax.train import TrainConfig, next_token_loss, train
from ttc_jax.verify.data import make_iterator
from ttc_jax.verify.init_from_policy import policy_initializer

SECTIONS = {"job", "seed", "task", "reviser", "train", "mesh", "distributed"}


@dataclasses.dataclass(frozen=True)
class ReviserConfig:
  policy: str = "policy"  # Stage dir under WORKDIR, or a path to a stage / export: the initialisation.
  data: str = "revisions/data"  # Trajectories (job revision_data) under WORKDIR, or a path.
  stage: str = "reviser"  # Output WORKDIR/<stage>.
  heldout_fraction: float = 0.1  # Last fraction of problems kept out of training, for reviser_eval.json.
  eval_batch_size: int = 32
  epochs: float = 1.0  # At most this many passes over the training examples (caps train.steps).
  # The first-attempt gate: problems of the task's split neither model trained on, first attempts per problem.
  check_split: str = "validation"
  check_problems: int = 100  # 0: no first-attempt check.
  check_samples: int = 4
  check_temperature: float = 1.0  # As the chains sample (revision_eval.temperature).
  check_max_new_tokens: int = 96
  check_batch_size: int = 64  # Rows per sampler call.

  def __post_init__(self):
    if not 0 <= self.heldout_fraction < 1:
      raise ValueError(f"reviser.heldout_fraction={self.heldout_fraction} must be in [0, 1)")
    for field in ("eval_batch_size", "epochs", "check_samples", "check_max_new_tokens", "check_batch_size"):
      if getattr(self, field) <= 0:
        raise ValueError(f"reviser.{field}={getattr(self, field)} must be positive")
    if self.check_problems < 0:
      raise ValueError(f"reviser.check_problems={self.check_problems} must be >= 0")

  @property
  def check_sampling(self) -> SamplingConfig:
    return SamplingConfig(temperature=self.check_temperature, max_new_tokens=self.check_max_new_tokens)


def epoch_steps(train_cfg: TrainConfig, examples: int, epochs: float) -> TrainConfig:
  """`train_cfg` with at most `epochs` passes over `examples`: steps = min(train.steps, ceil(epochs x examples /
  batch_size)); when that cuts the steps, warmup_steps shrinks in proportion (the schedule keeps its shape)."""
  steps = min(train_cfg.steps, max(1, math.ceil(epochs * examples / train_cfg.batch_size)))
  if steps == train_cfg.steps:
    return train_cfg
  warmup = min(steps, round(train_cfg.warmup_steps * steps / train_cfg.steps))
  return dataclasses.replace(train_cfg, steps=steps, warmup_steps=warmup)


def run(config, workdir: str) -> None:
  config_parsing.check_sections(config, SECTIONS, "train_reviser")
  cfg = config_parsing.parse_section(ReviserConfig, config.reviser, "reviser")
  configured = config_parsing.parse_section(TrainConfig, config.train, "train")
  task = common.make_task(config.task, workdir) if cfg.check_problems else None
  data_dir = resolve(workdir, cfg.data)
  all_trajectories = dataset.read_trajectories(data_dir, f"reviser.data={cfg.data!r}")
  policy_dir = resolve(workdir, cfg.policy)
  policy_cfg = export.model_config_of(policy_dir, f"reviser.policy={cfg.policy!r}",
                                      "run the train_policy job (configs/policy.py) first")
  tokenizer = export.tokenizer_in(hf_path(policy_dir))
  # Same network as the policy (every parameter is copied); max_len only documents the longer contexts.
  model_cfg = dataclasses.replace(policy_cfg, max_len=max(policy_cfg.max_len, configured.seq_len))
  model = Transformer(model_cfg)

  trajectories, heldout, heldout_problems = split_trajectories(all_trajectories, cfg.heldout_fraction)
  examples, stats = revision_examples(trajectories, tokenizer, configured.seq_len)
  if not examples:
    raise ValueError(f"no revision training examples in {data_dir} ({len(trajectories)} trajectories, "
                     f"{stats['skipped']} longer than train.seq_len={configured.seq_len})")
  train_cfg = epoch_steps(configured, len(examples), cfg.epochs)
  epochs = train_cfg.steps * train_cfg.batch_size / len(examples)
  logging.info("Reviser: %d examples (%d skipped as too long), longest %d tokens, mean %.1f; %d trajectories of "
               "%d problems held out; %d steps x %d = %.2f epochs (train.steps=%d, reviser.epochs=%g)",
               stats["examples"], stats["skipped"], stats["max_length"], stats["mean_length"], len(heldout),
               heldout_problems, train_cfg.steps, train_cfg.batch_size, epochs, configured.steps, cfg.epochs)

  mesh = common.setup_mesh(config)
  with common.training_stage(workdir, cfg.stage, model_cfg) as out_dir:
    identity = fingerprint({"reviser": dataclasses.asdict(cfg), "model": dataclasses.asdict(model_cfg),
                            "train": dataclasses.asdict(train_cfg), "seed": config.seed,
                            "data": input_fingerprint(data_dir),
                            "policy": read_json_field(os.path.join(hf_path(policy_dir), "train_summary.json"),
                                                      "model_fingerprint")})
    write_json(os.path.join(out_dir, "model_config.json"), dataclasses.asdict(model_cfg))
    export.copy_tokenizer(hf_path(policy_dir), out_dir)
    data_iter = make_iterator(examples, batch_size=train_cfg.batch_size, seed=config.seed,
                              shard_index=jax.process_index(), shard_count=jax.process_count(),
                              workers=train_cfg.input_workers)
    dummy = np.zeros((1, train_cfg.seq_len), np.int32)
    init_fn = lambda rng: model.init(rng, dummy)
    initial_params = policy_initializer(policy_dir, mesh, init_fn, jax.random.key(config.seed))
    start = time.time()
    loss_fn = next_token_loss(model)
    state = train(init_fn=init_fn, loss_fn=loss_fn, cfg=train_cfg, data_iter=data_iter, mesh=mesh, workdir=out_dir,
                  seed=config.seed, initial_params=initial_params, model_cfg=model_cfg)
    wall = time.time() - start
    summary_path = os.path.join(out_dir, "train_summary.json")
    if jax.process_index() == 0 and not common.is_current(summary_path, None, identity, steps=train_cfg.steps):
      write_json(summary_path, {
          "git_commit": git_commit(), "params": count_params(model_cfg), "steps": train_cfg.steps,
          "configured_steps": configured.steps, "epochs": epochs,
          "trajectories": len(trajectories), **k_distribution(trajectories), **stats,
          "heldout_trajectories": len(heldout), "heldout_problems": heldout_problems, "model_fingerprint": identity,
          "data": data_dir,
          "policy": policy_dir, "wall_time_s": wall, "devices": jax.device_count(),
          "reviser": dataclasses.asdict(cfg), "model": dataclasses.asdict(model_cfg),
          "train": dataclasses.asdict(train_cfg)})

    eval_path = os.path.join(out_dir, "reviser_eval.json")
    if common.is_current(eval_path, train_cfg.steps, identity):
      logging.info("Held-out evaluation already done: %s", eval_path)
      return
    if not heldout and not cfg.check_problems:
      logging.info("reviser.heldout_fraction=0 and reviser.check_problems=0: no held-out evaluation")
      return
    result = {}
    with jax.set_mesh(mesh):
      # The policy is the same network (every parameter was copied from it), so the reviser's model applies.
      policy_params = export.load_model(policy_dir, mesh).params
      if heldout:
        result = evaluate_heldout(loss_fn, {"reviser": state.params, "policy": policy_params}, heldout, tokenizer,
                                  seq_len=train_cfg.seq_len, batch_size=cfg.eval_batch_size)
    if cfg.check_problems:  # Sampled as eval_revisions samples chains (outside the training mesh context).
      result["first_attempt"] = _first_attempt_check(cfg, task, model, state.params, policy_params, tokenizer,
                                                     jax.random.fold_in(jax.random.key(config.seed), 1))
    result.update(step=train_cfg.steps, model_fingerprint=identity, heldout_problems=heldout_problems,
                  heldout_trajectories=len(heldout), train_problems=len({t["problem_id"] for t in trajectories}),
                  git_commit=git_commit())
    if jax.process_index() == 0:
      write_json(eval_path, result)
    if heldout:
      logging.info("Held-out final-attempt loss, reviser vs policy: %s; by k: %s",
                   (result["reviser"]["loss"], result["policy"]["loss"]),
                   {k: (r["reviser"]["loss"], r["policy"]["loss"]) for k, r in result["by_k"].items()})
    if "first_attempt" in result:
      check = result["first_attempt"]
      log = logging.warning if check["gate"] in rheldout.WARN else logging.info
      log("First attempt on held-out problems (%s split): %s", cfg.check_split, rheldout.gate_summary(check))
    logging.info("Held-out checks -> %s", eval_path)


def _first_attempt_check(cfg: ReviserConfig, task, model, reviser_params, policy_params, tokenizer,
                         rng: jax.Array) -> dict:
  """reviser_eval.json's "first_attempt": both models' first-attempt pass@1 on the check problems, sampled with
  the same keys (common random numbers make the paired interval tighter), and the gate."""
  problems = common.prepare_task(task).problems(cfg.check_split, cfg.check_problems)
  kwargs = dict(samples=cfg.check_samples, cfg=cfg.check_sampling, batch_size=cfg.check_batch_size)
  reviser = rheldout.first_attempt_pass1(model, reviser_params, tokenizer, problems, task.grader, rng, **kwargs)
  policy = rheldout.first_attempt_pass1(model, policy_params, tokenizer, problems, task.grader, rng, **kwargs)
  return {"split": cfg.check_split, "problems": len(problems), "samples_per_problem": cfg.check_samples,
          "sampling": dataclasses.asdict(cfg.check_sampling), **rheldout.compare_first_attempts(reviser, policy),
          "pass1": {"reviser": reviser, "policy": policy}}
