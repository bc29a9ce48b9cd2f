"""A tiny training run as a separate process, for kill / resume tests.

  python -m ttc_jax.testing.train_run --workdir=DIR --steps=12 [--kill_at_step=7] [--kill_in_save_at_step=8]
      [--input_workers=2]

--kill_at_step SIGKILLs the process right after that step is dispatched (after
waiting for in-flight checkpoint writes, so a committed checkpoint exists);
--kill_in_save_at_step SIGKILLs it in the middle of writing that step's
checkpoint. Final params are written to DIR/final_params.npz.
"""
import os
import signal

from absl import app, flags

flags.DEFINE_string("workdir", None, "Run directory.")
flags.DEFINE_integer("steps", 12, "Training steps.")
flags.DEFINE_integer("checkpoint_every", 4, "Checkpoint interval.")
flags.DEFINE_integer("kill_at_step", -1, "SIGKILL after this step.")
flags.DEFINE_integer("kill_in_save_at_step", -1, "SIGKILL while writing this step's checkpoint.")
flags.DEFINE_integer("input_workers", 0, "grain worker processes making batches (train.input_workers).")
FLAGS = flags.FLAGS


def _kill_self():
  os.kill(os.getpid(), signal.SIGKILL)


def main(argv):
  del argv
  import grain
  import jax
  import numpy as np

  from ttc_jax.models import Transformer
  from ttc_jax.parallel import MeshConfig, make_mesh
  from ttc_jax.testing.tiny import grain_lm_iterator, random_lm_batches, tiny_model_config
  from ttc_jax.train import TrainConfig, next_token_loss, train

  if FLAGS.kill_in_save_at_step > 0:
    # The grain iterator is written after the train state has started writing: dying
    # here leaves that step's checkpoint half-written, as a preemption would.
    handler = grain.checkpoint.CheckpointHandler
    original = handler.save

    def save_then_maybe_die(self, directory, *args, **kwargs):
      if f"/{FLAGS.kill_in_save_at_step}." in str(directory) or f"/{FLAGS.kill_in_save_at_step}/" in str(directory):
        _kill_self()
      return original(self, directory, *args, **kwargs)

    handler.save = save_then_maybe_die

  cfg = tiny_model_config()
  model = Transformer(cfg)
  data_iter = grain_lm_iterator(random_lm_batches(64, 17, cfg.vocab_size), batch_size=8, workers=FLAGS.input_workers)

  def on_step_end(step, state, ckpt):
    if step == FLAGS.kill_at_step:
      ckpt.wait()
      _kill_self()

  train_cfg = TrainConfig(steps=FLAGS.steps, batch_size=8, seq_len=17, warmup_steps=2,
                          checkpoint_every=FLAGS.checkpoint_every, log_every=1, keep_checkpoints=3,
                          input_workers=FLAGS.input_workers)
  state = train(init_fn=lambda rng: model.init(rng, np.zeros((1, 16), np.int32)), loss_fn=next_token_loss(model),
                cfg=train_cfg, data_iter=data_iter, mesh=make_mesh(MeshConfig(), devices=jax.devices()[:1]),
                workdir=FLAGS.workdir, seed=0, on_step_end=on_step_end)
  flat = {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_leaves_with_path(state.params)}
  np.savez(os.path.join(FLAGS.workdir, "final_params.npz"), **flat)


if __name__ == "__main__":
  flags.mark_flag_as_required("workdir")
  app.run(main)
