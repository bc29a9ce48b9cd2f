"""Job `train_reviser`: fine-tune the policy into the revision model on revision trajectories.

Reads the policy stage (model_config.json, tokenizer.model, checkpoints) and the
trajectories of WORKDIR/revisions/data/trajectories.array_record (job revision_data)
through grain's ArrayRecordDataSource. The revision model is the policy's
network, initialised from it, trained with the shared loop on next-token loss
over the final (correct) attempt only; the previous attempts are context.
Writes WORKDIR/<stage> ("reviser" by default) like a policy stage: checkpoints/,
metrics.jsonl, tensorboard/, model_config.json, tokenizer.model,
train_summary.json; it loads with `export.load_model`. The trajectories of the last
`heldout_fraction` of problems are never trained on: reviser_eval.json holds the loss
on them of the reviser and of the policy it started from (`revise/heldout.py`).
Re-running resumes training and skips a finished evaluation.
"""
import dataclasses
import os
import time

import jax
import numpy as np
from absl import logging

from ttc_jax import config_parsing, export
from ttc_jax.jobs import common
from ttc_jax.model_refs import hf_path, resolve
from ttc_jax.models import Transformer
from ttc_jax.models.flops import count_params
from ttc_jax.provenance import fingerprint, git_commit, input_fingerprint, read_json_field, write_json
from ttc_jax.revise import dataset
from ttc_jax.revise.data import revision_examples
from ttc_jax.revise.heldout import evaluate_heldout, split_trajectories
from ttc_jax.train import TrainConfig, next_token_loss, train
from ttc_jax.verify.data import make_iterator
from ttc_jax.verify.init_from_policy import policy_initializer

SECTIONS = {"job", "seed", "reviser", "train", "mesh", "distributed"}


@dataclasses.dataclass(frozen=True)
class ReviserConfig:
  policy: str = "policy"  # Stage dir under WORKDIR, or a path to a stage / export: the initialisation.
  data: str = "revisions/data"  # Trajectories (job revision_data) under WORKDIR, or a path.
  stage: str = "reviser"  # Output WORKDIR/<stage>.
  heldout_fraction: float = 0.1  # Last fraction of problems kept out of training, for reviser_eval.json.
  eval_batch_size: int = 32

  def __post_init__(self):
    if not 0 <= self.heldout_fraction < 1:
      raise ValueError(f"reviser.heldout_fraction={self.heldout_fraction} must be in [0, 1)")
    if self.eval_batch_size <= 0:
      raise ValueError(f"reviser.eval_batch_size={self.eval_batch_size} must be positive")


def run(config, workdir: str) -> None:
  config_parsing.check_sections(config, SECTIONS, "train_reviser")
  cfg = config_parsing.parse_section(ReviserConfig, config.reviser, "reviser")
  train_cfg = config_parsing.parse_section(TrainConfig, config.train, "train")
  data_dir = resolve(workdir, cfg.data)
  all_trajectories = dataset.read_trajectories(data_dir, f"reviser.data={cfg.data!r}")
  policy_dir = resolve(workdir, cfg.policy)
  policy_cfg = export.model_config_of(policy_dir, f"reviser.policy={cfg.policy!r}",
                                      "run the train_policy job (configs/policy.py) first")
  tokenizer = export.tokenizer_in(hf_path(policy_dir))
  # Same network as the policy (every parameter is copied); max_len only documents the longer contexts.
  model_cfg = dataclasses.replace(policy_cfg, max_len=max(policy_cfg.max_len, train_cfg.seq_len))
  model = Transformer(model_cfg)

  trajectories, heldout, heldout_problems = split_trajectories(all_trajectories, cfg.heldout_fraction)
  examples, stats = revision_examples(trajectories, tokenizer, train_cfg.seq_len)
  if not examples:
    raise ValueError(f"no revision training examples in {data_dir} ({len(trajectories)} trajectories, "
                     f"{stats['skipped']} longer than train.seq_len={train_cfg.seq_len})")
  logging.info("Reviser: %d examples (%d skipped as too long), longest %d tokens, mean %.1f; %d trajectories of "
               "%d problems held out", stats["examples"], stats["skipped"], stats["max_length"], stats["mean_length"],
               len(heldout), heldout_problems)

  mesh = common.setup_mesh(config)
  out_dir = common.stage_dir(workdir, cfg.stage)
  identity = fingerprint({"reviser": dataclasses.asdict(cfg), "model": dataclasses.asdict(model_cfg),
                          "train": dataclasses.asdict(train_cfg), "seed": config.seed,
                          "data": input_fingerprint(data_dir),
                          "policy": read_json_field(os.path.join(hf_path(policy_dir), "train_summary.json"),
                                                    "model_fingerprint")})
  write_json(os.path.join(out_dir, "model_config.json"), dataclasses.asdict(model_cfg))
  export.copy_tokenizer(hf_path(policy_dir), out_dir)
  data_iter = make_iterator(examples, batch_size=train_cfg.batch_size, seed=config.seed,
                            shard_index=jax.process_index(), shard_count=jax.process_count())
  dummy = np.zeros((1, train_cfg.seq_len), np.int32)
  init_fn = lambda rng: model.init(rng, dummy)
  initial_params = policy_initializer(policy_dir, mesh, init_fn, jax.random.key(config.seed))
  start = time.time()
  loss_fn = next_token_loss(model)
  state = train(init_fn=init_fn, loss_fn=loss_fn, cfg=train_cfg, data_iter=data_iter, mesh=mesh, workdir=out_dir,
                seed=config.seed, initial_params=initial_params)
  wall = time.time() - start
  summary_path = os.path.join(out_dir, "train_summary.json")
  if jax.process_index() == 0 and not common.is_current(summary_path, None, identity, steps=train_cfg.steps):
    by_k = {}
    for t in trajectories:
      by_k[str(t["k"])] = by_k.get(str(t["k"]), 0) + 1
    write_json(summary_path, {
        "git_commit": git_commit(), "params": count_params(model_cfg), "steps": train_cfg.steps,
        "trajectories": len(trajectories), "trajectories_by_k": by_k, **stats,
        "heldout_trajectories": len(heldout), "heldout_problems": heldout_problems, "model_fingerprint": identity, "data": data_dir,
        "policy": policy_dir, "wall_time_s": wall, "devices": jax.device_count(),
        "reviser": dataclasses.asdict(cfg), "model": dataclasses.asdict(model_cfg),
        "train": dataclasses.asdict(train_cfg)})

  eval_path = os.path.join(out_dir, "reviser_eval.json")
  if common.is_current(eval_path, train_cfg.steps, identity):
    logging.info("Held-out evaluation already done: %s", eval_path)
    return
  if not heldout:
    logging.info("reviser.heldout_fraction=0: no held-out evaluation")
    return
  with jax.set_mesh(mesh):
    # The policy is the same network (every parameter was copied from it), so the reviser's loss applies.
    policy_params = export.load_model(policy_dir, mesh).params
    result = evaluate_heldout(loss_fn, {"reviser": state.params, "policy": policy_params}, heldout, tokenizer,
                              seq_len=train_cfg.seq_len, batch_size=cfg.eval_batch_size)
  result.update(step=train_cfg.steps, model_fingerprint=identity, heldout_problems=heldout_problems, heldout_trajectories=len(heldout),
                train_problems=len({t["problem_id"] for t in trajectories}), git_commit=git_commit())
  if jax.process_index() == 0:
    write_json(eval_path, result)
  logging.info("Held-out final-attempt loss, reviser vs policy: %s; by k: %s -> %s",
               (result["reviser"]["loss"], result["policy"]["loss"]),
               {k: (r["reviser"]["loss"], r["policy"]["loss"]) for k, r in result["by_k"].items()}, eval_path)
