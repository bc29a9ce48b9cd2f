"""Device memory a training step needs, checked before compiling it.

A run too large for its accelerator otherwise fails minutes in, inside XLA's
compiler or allocator, with a message that names buffers, not settings. Here the
train state is counted exactly per device from its shardings (parameters,
gradients and optimizer moments, each in its own dtype), activations are bounded
roughly from the model shape and `model.remat`, and a run that cannot fit stops
with what it needs and which settings bring it down.

The activation figure is an estimate, not XLA's buffer assignment: per token and
layer it counts what the backward pass keeps under each remat policy, plus one
layer recomputed in full, plus the float32 logits of the loss. It reproduces the
H200 measurements of issue 14 (1.2B shape, batch 8, sequence 2,048, remat dots:
73 GiB measured) to within about 10%.
"""
import dataclasses

import jax
import numpy as np

from ttc_jax.models import attention
from ttc_jax.models.config import ModelConfig
from ttc_jax.train.config import TrainConfig

GIB = 1024 ** 3
_FLOAT32 = 4


class TrainMemoryError(ValueError):
  """The training step would not fit in device memory; the message says what to change."""


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
  """Bytes per device."""
  params: int
  grads: int  # Gradients (twice the parameters' bytes with accumulation: the running sum too).
  optimizer: int
  activations: int  # Kept for the backward pass, plus the layer being recomputed.
  logits: int  # The loss's [tokens, vocab] buffers.

  @property
  def total(self) -> int:
    return self.params + self.grads + self.optimizer + self.activations + self.logits

  def describe(self) -> str:
    parts = ", ".join(f"{name} {getattr(self, name) / GIB:.1f}"
                      for name in ("params", "grads", "optimizer", "activations", "logits"))
    return f"{self.total / GIB:.1f} GiB ({parts})"


def per_device_bytes(abstract_tree, shardings) -> int:
  """Bytes one device holds of a tree of ShapeDtypeStructs laid out by `shardings` (the largest shard)."""
  leaves = jax.tree_util.tree_leaves(abstract_tree)
  placed = jax.tree_util.tree_leaves(shardings, is_leaf=lambda x: isinstance(x, jax.sharding.Sharding))
  return int(sum(np.prod(s.shard_shape(x.shape)) * np.dtype(x.dtype).itemsize for x, s in zip(leaves, placed)))


def activation_bytes(model: ModelConfig, train: TrainConfig, tokens_per_device: float,
                     backend: str | None = None) -> tuple[int, int]:
  """(activations, logits) in bytes for one microbatch of `tokens_per_device` tokens on one device."""
  c = np.dtype(model.dtype).itemsize
  d, f, h = model.d_model, model.d_ff, model.head_size
  n, k, s = model.n_heads, model.n_kv_heads, train.seq_len
  # What `checkpoint_dots_with_no_batch_dims` keeps: the projections' outputs (q, k, v, o, gate, up, down).
  dots = c * (n * h + 2 * k * h + 2 * d + 2 * f)
  impl = attention.choose_impl(model.attention_impl, dtype=model.dtype, head_size=h, softcap=model.attn_softcap,
                               sliding=bool(model.sliding_window), seq_len=s, backend=backend)
  # Per query: the xla path keeps float32 scores and probabilities and the cast probabilities for
  # all S keys; the fused / blockwise paths keep a few numbers per head (the block is transient).
  scores = n * s * (2 * _FLOAT32 + c) if impl == "xla" else n * 2 * _FLOAT32
  working_scores = n * min(s, attention.CHUNK) * 3 * _FLOAT32 if impl == "chunked" else scores
  # Everything of a layer: the matmul outputs, their elementwise companions (norms and RoPE in float32).
  layer_all = 2 * dots + 4 * _FLOAT32 * (n + k) * h + 4 * _FLOAT32 * d
  carry = c * d  # Each layer's input, kept by every policy (the scan's carry).
  kept = {"none": layer_all + scores, "dots": dots + carry, "full": carry}[model.remat]
  recomputed = 0 if model.remat == "none" else layer_all + working_scores
  per_token = model.n_layers * kept + recomputed
  logits = model.vocab_size * (c + 3 * _FLOAT32) if model.lm_head else 0
  return int(per_token * tokens_per_device), int(logits * tokens_per_device)


def estimate(model: ModelConfig | None, train: TrainConfig, *, params: int, optimizer: int, data_parallel: int,
             tensor_parallel: int = 1, backend: str | None = None) -> MemoryEstimate:
  """Per-device memory of one training step; `params` / `optimizer` are the per-device state bytes.

  model None counts the train state only. Tensor parallelism splits heads, MLP and vocabulary
  activations; dividing all activations by it is the approximation used.
  """
  tokens = train.batch_size / train.grad_accum_steps * train.seq_len / data_parallel / tensor_parallel
  acts, logits = activation_bytes(model, train, tokens, backend) if model is not None else (0, 0)
  grads = params * (2 if train.grad_accum_steps > 1 else 1)
  return MemoryEstimate(params=params, grads=grads, optimizer=optimizer, activations=acts, logits=logits)


def device_limit_bytes(train: TrainConfig, device=None) -> int | None:
  """`train.device_memory_gib` when set, else what the device's allocator may use (None: unknown, e.g. CPU)."""
  if train.device_memory_gib:
    return int(train.device_memory_gib * GIB)
  stats = (device or jax.local_devices()[0]).memory_stats() or {}
  return stats.get("bytes_limit")


def _advice(model: ModelConfig | None, train: TrainConfig, est: MemoryEstimate, rebuild) -> list[str]:
  """Each setting that lowers the estimate, with the total it would give."""
  tips = []
  for remat in ("dots", "full") if model is not None else ():
    if model.remat != remat and (model.remat, remat) != ("full", "dots"):
      tips.append(f"model.remat={remat!r} ({rebuild(dataclasses.replace(model, remat=remat), train).total / GIB:.1f} GiB)")
  if model is not None and model.attention_impl in ("xla", "auto") and attention.choose_impl(
      model.attention_impl, dtype=model.dtype, head_size=model.head_size, softcap=model.attn_softcap,
      sliding=bool(model.sliding_window), seq_len=train.seq_len) == "xla":
    fused = rebuild(dataclasses.replace(model, attention_impl="chunked"), train).total / GIB
    tips.append(f"model.attention_impl='chunked' or 'cudnn' (no [T, T] scores: {fused:.1f} GiB)")
  if train.adam_mu_dtype != "bfloat16":
    tips.append(f"train.adam_mu_dtype='bfloat16' (first moment in bf16: saves {est.optimizer / 4 / GIB:.1f} GiB)")
  tips.append("mesh.fsdp over more devices (divides params, grads and optimizer state among them)")
  if train.batch_size > train.grad_accum_steps:
    smaller = dataclasses.replace(train, grad_accum_steps=train.grad_accum_steps * 2)
    tips.append(f"a smaller microbatch: train.batch_size, or train.grad_accum_steps={smaller.grad_accum_steps} "
                f"({rebuild(model, smaller).total / GIB:.1f} GiB)")
  return tips


def check_fits(model: ModelConfig | None, train: TrainConfig, *, params: int, optimizer: int, data_parallel: int,
               tensor_parallel: int = 1, limit: int | None = None, backend: str | None = None) -> MemoryEstimate:
  """The estimate; raises TrainMemoryError when it exceeds `limit` bytes (None: no check)."""
  rebuild = lambda m, t: estimate(m, t, params=params, optimizer=optimizer if t.adam_mu_dtype == train.adam_mu_dtype
                                  else optimizer * 3 // 4, data_parallel=data_parallel,
                                  tensor_parallel=tensor_parallel, backend=backend)
  est = rebuild(model, train)
  if limit is not None and est.total > limit:
    tips = "; ".join(_advice(model, train, est, rebuild))
    raise TrainMemoryError(
        f"Training step needs about {est.describe()} per device, more than the {limit / GIB:.1f} GiB available "
        f"({'train.device_memory_gib' if train.device_memory_gib else 'the device allocator limit'}); "
        f"batch {train.batch_size} x {train.seq_len} tokens, {data_parallel}-way data parallel"
        f"{f', remat {model.remat!r}' if model is not None else ''}. To reduce it: {tips}")
  return est
