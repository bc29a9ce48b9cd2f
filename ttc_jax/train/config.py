"""Training hyperparameters as a frozen dataclass."""
import dataclasses


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  steps: int = 1000
  batch_size: int = 64  # Global batch (all hosts), in sequences.
  seq_len: int = 128
  grad_accum_steps: int = 1  # Microbatches per step; gradients are summed, then divided by total weight.
  learning_rate: float = 1e-3
  warmup_steps: int = 100
  min_lr_ratio: float = 0.1  # Cosine decays to learning_rate * min_lr_ratio.
  weight_decay: float = 0.1
  b1: float = 0.9
  b2: float = 0.95
  eps: float = 1e-8
  clip_norm: float = 1.0
  checkpoint_every: int = 200
  keep_checkpoints: int = 2
  async_checkpoint: bool = True
  checkpoint_timeout_s: float = 1800.0  # Longest wait for one save to commit; past it the run stops with an error.
  log_every: int = 20
  # grain worker processes making batches ahead of the step (0: in the training process).
  input_workers: int = 0
  adam_mu_dtype: str = "float32"  # Adam's first moment: "bfloat16" saves a quarter of the optimizer state.
  # Device memory the pre-compile check compares against (ttc_jax/train/memory.py); 0: the device's own.
  device_memory_gib: float = 0.0

  def __post_init__(self):
    errors = []
    for field in ("steps", "batch_size", "seq_len", "grad_accum_steps", "checkpoint_every", "log_every",
                  "keep_checkpoints"):
      if getattr(self, field) <= 0:
        errors.append(f"train.{field}={getattr(self, field)} must be positive")
    if self.batch_size % self.grad_accum_steps:
      errors.append(f"train.batch_size={self.batch_size} must be divisible by "
                    f"train.grad_accum_steps={self.grad_accum_steps}")
    if not 0 <= self.warmup_steps <= self.steps:
      errors.append(f"train.warmup_steps={self.warmup_steps} must be within [0, train.steps={self.steps}]")
    if self.adam_mu_dtype not in ("float32", "bfloat16"):
      errors.append(f"train.adam_mu_dtype={self.adam_mu_dtype!r} must be 'float32' or 'bfloat16'")
    if self.device_memory_gib < 0:
      errors.append(f"train.device_memory_gib={self.device_memory_gib} must be >= 0 (0: the device's own limit)")
    if self.input_workers < 0:
      errors.append(f"train.input_workers={self.input_workers} must be >= 0 (0: read in the training process)")
    if self.checkpoint_timeout_s <= 0:
      errors.append(f"train.checkpoint_timeout_s={self.checkpoint_timeout_s} must be positive")
    if self.learning_rate <= 0:
      errors.append(f"train.learning_rate={self.learning_rate} must be positive")
    if not 0 <= self.min_lr_ratio <= 1:
      errors.append(f"train.min_lr_ratio={self.min_lr_ratio} must be within [0, 1]")
    if errors:
      raise ValueError("Invalid train config: " + "; ".join(errors))
