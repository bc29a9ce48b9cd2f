"""Job `train_policy`: train the policy on the task, then measure its pass@1.

Outputs in WORKDIR/<stage> (stage "policy" by default): checkpoints/,
metrics.jsonl, tensorboard/, model_config.json, tokenizer.model,
train_summary.json, eval.json.
Re-running resumes training from the last checkpoint and skips what is done.
"""
import dataclasses
import os
import time

import jax
import numpy as np
from absl import logging

from ttc_jax import config_parsing, storage
from ttc_jax.jobs import common
from ttc_jax.jobs.evaluate_policy import PolicyEvalConfig, evaluate_policy, log_summary
from ttc_jax.models import Transformer
from ttc_jax.models.flops import count_params, train_flops_per_token
from ttc_jax.provenance import fingerprint, git_commit, write_json
from ttc_jax.tasks import grain_pipeline, tfds_builder
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.train import TrainConfig, checkpoint_dir, next_token_loss, train
from ttc_jax.train.checkpoint import latest_step

SECTIONS = {"job", "seed", "stage", "model", "train", "mesh", "distributed", "task", "eval"}


def run(config, workdir: str) -> None:
  # Parse everything first: a bad field fails here, before data or compilation.
  config_parsing.check_sections(config, SECTIONS, "train_policy")
  task_spec, task_cfg = common.parse_task(config.task)
  train_cfg = config_parsing.parse_section(TrainConfig, config.train, "train")
  common.reject_moved(config.get("eval"), "eval", {"grader": "task.grader"})
  eval_cfg = config_parsing.parse_section(PolicyEvalConfig, config.get("eval"), "eval")
  tokenizer = load_tokenizer(task_spec.tokenizer or None)
  model_cfg = common.parse_model(config.model, tokenizer)
  mesh = common.setup_mesh(config)
  with common.training_stage(workdir, config.get("stage", "policy"), model_cfg) as out_dir:
    builder = common.task_data(task_spec, task_cfg, workdir)  # Generated training data: the arith task only.
    task = common.make_task(config.task, workdir)  # The same data, read through the Task interface for eval.

    model = Transformer(model_cfg)
    # What the trained parameters are a function of: a checkpoint from another config is not this model.
    identity = fingerprint({"model": dataclasses.asdict(model_cfg), "train": dataclasses.asdict(train_cfg),
                            "seed": config.seed, "task": dataclasses.asdict(task_spec),
                            "generator": dataclasses.asdict(task_cfg)})
    write_json(os.path.join(out_dir, "model_config.json"), dataclasses.asdict(model_cfg))
    storage.copyfile(str(tokenizer.model_path), os.path.join(out_dir, "tokenizer.model"))  # Stage is self-describing.
    data_iter = grain_pipeline.make_train_iterator(
        tfds_builder.data_source(builder, "train"), tokenizer, seq_len=train_cfg.seq_len,
        batch_size=train_cfg.batch_size, seed=config.seed, shard_index=jax.process_index(),
        shard_count=jax.process_count(), workers=train_cfg.input_workers)
    dummy = np.zeros((1, train_cfg.seq_len), np.int32)
    resumed_from = latest_step(checkpoint_dir(out_dir)) or 0
    start = time.time()
    state = train(init_fn=lambda rng: model.init(rng, dummy), loss_fn=next_token_loss(model), cfg=train_cfg,
                  data_iter=data_iter, mesh=mesh, workdir=out_dir, seed=config.seed, model_cfg=model_cfg)
    if resumed_from < train_cfg.steps:  # A no-op re-run keeps the summary (and timing) of the run that trained.
      tokens = train_cfg.steps * train_cfg.batch_size * train_cfg.seq_len
      write_json(os.path.join(out_dir, "train_summary.json"), {
          "git_commit": git_commit(), "params": count_params(model_cfg), "steps": train_cfg.steps,
          "train_tokens": tokens, "train_flops": tokens * train_flops_per_token(model_cfg, train_cfg.seq_len),
          "wall_time_s": time.time() - start, "resumed_from_step": resumed_from, "devices": jax.device_count(),
          "platform": jax.devices()[0].platform, "model_fingerprint": identity, "model": dataclasses.asdict(model_cfg),
          "train": dataclasses.asdict(train_cfg)})

    eval_path = os.path.join(out_dir, "eval.json")
    if common.is_current(eval_path, train_cfg.steps, identity, config=dataclasses.asdict(eval_cfg)):
      logging.info("Evaluation already done: %s", eval_path)
      return
    with jax.set_mesh(mesh):
      result = evaluate_policy(model, state.params, tokenizer, task, eval_cfg, jax.random.key(config.seed + 1))
    result["step"] = train_cfg.steps
    result["model_fingerprint"] = identity
    if jax.process_index() == 0:
      write_json(eval_path, result)
    log_summary(result, eval_path)

