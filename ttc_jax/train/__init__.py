"""The shared training loop: state, step, losses, checkpoints, metrics."""
from ttc_jax.train.config import TrainConfig
from ttc_jax.train.loop import NonFiniteLossError, checkpoint_dir, train
from ttc_jax.train.losses import LossOutput, next_token_loss
