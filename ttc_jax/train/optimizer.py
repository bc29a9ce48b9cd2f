"""AdamW with linear warmup, cosine decay and global-norm clipping."""
import optax

from ttc_jax.train.config import TrainConfig


def make_schedule(cfg: TrainConfig) -> optax.Schedule:
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=cfg.learning_rate, warmup_steps=cfg.warmup_steps,
      decay_steps=cfg.steps, end_value=cfg.learning_rate * cfg.min_lr_ratio)


def _decay_mask(params):
  # No weight decay on norm scales and biases (rank-1 leaves): decaying them only hurts.
  import jax
  return jax.tree_util.tree_map(lambda p: p.ndim > 1, params)


def make_optimizer(cfg: TrainConfig) -> tuple[optax.GradientTransformation, optax.Schedule]:
  schedule = make_schedule(cfg)
  tx = optax.chain(
      optax.clip_by_global_norm(cfg.clip_norm),
      optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay, mask=_decay_mask,
                  mu_dtype=None if cfg.adam_mu_dtype == "float32" else cfg.adam_mu_dtype),
  )
  return tx, schedule
