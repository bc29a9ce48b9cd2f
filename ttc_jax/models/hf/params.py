"""The parameter map: Hugging Face tensor names <-> this project's Flax tree, one table.

Each row: the Flax path (under "params"; rows with `layer=True` are stacked on a
leading L axis by nn.scan), the HF name ("{i}" = layer index, relative to the
detected prefix), the logical axis names of one layer's slice, its shape, and the
transform beside it. Per-family differences are the `when` column: which switch
brings a row in, or which HF norm name a Flax norm takes.

HF -> ours transforms are views (reshape of a contiguous tensor, transpose), so
slicing after them reads only the slice from a memory map.
"""
import dataclasses
from collections.abc import Callable

import numpy as np

from ttc_jax.models.config import ModelConfig

Cfg = ModelConfig


@dataclasses.dataclass(frozen=True)
class Row:
  path: str  # Flax path under "params", "/"-separated.
  hf: str  # HF name after the prefix; "{i}" is the layer index.
  names: tuple[str | None, ...]  # Logical axes of one layer's slice (the stacked L axis is "layers").
  shape: Callable[[Cfg], tuple[int, ...]]  # Our shape of one layer's slice.
  to_ours: Callable[[np.ndarray, Cfg], np.ndarray]  # One HF tensor -> our slice (a view).
  to_hf: Callable[[np.ndarray, Cfg], np.ndarray]  # Our slice -> the HF tensor.
  when: Callable[[Cfg], bool] = lambda cfg: True
  layer: bool = True
  root: bool = False  # Name is relative to the checkpoint root, not the decoder prefix (lm_head, heads).


def _same(x, cfg):
  return x


def _t(x, cfg):
  return x.T


def _qkv(heads: Callable[[Cfg], int]):
  # [N*H, D] -> reshape (N, H, D) -> transpose (2, 0, 1) -> [D, N, H]; and back.
  to_ours = lambda x, cfg: x.reshape(heads(cfg), cfg.head_size, cfg.d_model).transpose(2, 0, 1)
  to_hf = lambda x, cfg: x.transpose(1, 2, 0).reshape(heads(cfg) * cfg.head_size, cfg.d_model)
  return to_ours, to_hf


def _bias(heads: Callable[[Cfg], int]):
  return (lambda x, cfg: x.reshape(heads(cfg), cfg.head_size),
          lambda x, cfg: x.reshape(heads(cfg) * cfg.head_size))


# o_proj [D, N*H] -> reshape (D, N, H) -> transpose (1, 2, 0) -> [N, H, D]; and back.
_o = (lambda x, cfg: x.reshape(cfg.d_model, cfg.n_heads, cfg.head_size).transpose(1, 2, 0),
      lambda x, cfg: x.transpose(2, 0, 1).reshape(cfg.d_model, cfg.n_heads * cfg.head_size))
_N = lambda cfg: cfg.n_heads
_K = lambda cfg: cfg.n_kv_heads
_D = lambda cfg: (cfg.d_model,)
_ATT = "layers.{i}.self_attn."
_LAYER = "layers.{i}."

ROWS: tuple[Row, ...] = (
    Row("embed/embedding", "embed_tokens.weight", ("vocab", "embed"), lambda c: (c.vocab_size, c.d_model),
        _same, _same, layer=False),
    Row("layers/attn_norm/scale", _LAYER + "input_layernorm.weight", ("norm",), _D, _same, _same),
    Row("layers/attn/q", _ATT + "q_proj.weight", ("embed", "heads", "head_dim"),
        lambda c: (c.d_model, c.n_heads, c.head_size), *_qkv(_N)),
    Row("layers/attn/k", _ATT + "k_proj.weight", ("embed", "kv_heads", "head_dim"),
        lambda c: (c.d_model, c.n_kv_heads, c.head_size), *_qkv(_K)),
    Row("layers/attn/v", _ATT + "v_proj.weight", ("embed", "kv_heads", "head_dim"),
        lambda c: (c.d_model, c.n_kv_heads, c.head_size), *_qkv(_K)),
    Row("layers/attn/o", _ATT + "o_proj.weight", ("heads", "head_dim", "embed"),
        lambda c: (c.n_heads, c.head_size, c.d_model), *_o),
    Row("layers/attn/q_bias", _ATT + "q_proj.bias", ("heads", "head_dim"), lambda c: (c.n_heads, c.head_size),
        *_bias(_N), when=lambda c: c.qkv_bias),
    Row("layers/attn/k_bias", _ATT + "k_proj.bias", ("kv_heads", "head_dim"), lambda c: (c.n_kv_heads, c.head_size),
        *_bias(_K), when=lambda c: c.qkv_bias),
    Row("layers/attn/v_bias", _ATT + "v_proj.bias", ("kv_heads", "head_dim"), lambda c: (c.n_kv_heads, c.head_size),
        *_bias(_K), when=lambda c: c.qkv_bias),
    Row("layers/attn/q_norm/scale", _ATT + "q_norm.weight", ("norm",), lambda c: (c.head_size,), _same, _same,
        when=lambda c: c.qk_norm),
    Row("layers/attn/k_norm/scale", _ATT + "k_norm.weight", ("norm",), lambda c: (c.head_size,), _same, _same,
        when=lambda c: c.qk_norm),
    # The norm-name trap: Llama/Qwen/Mistral's post_attention_layernorm is the norm BEFORE the MLP;
    # Gemma's is after attention, and its MLP norms are pre_/post_feedforward_layernorm.
    Row("layers/post_attn_norm/scale", _LAYER + "post_attention_layernorm.weight", ("norm",), _D, _same, _same,
        when=lambda c: c.post_norms),
    Row("layers/mlp_norm/scale", _LAYER + "post_attention_layernorm.weight", ("norm",), _D, _same, _same,
        when=lambda c: not c.post_norms),
    Row("layers/mlp_norm/scale", _LAYER + "pre_feedforward_layernorm.weight", ("norm",), _D, _same, _same,
        when=lambda c: c.post_norms),
    Row("layers/mlp/gate/kernel", _LAYER + "mlp.gate_proj.weight", ("embed", "mlp"), lambda c: (c.d_model, c.d_ff),
        _t, _t),
    Row("layers/mlp/up/kernel", _LAYER + "mlp.up_proj.weight", ("embed", "mlp"), lambda c: (c.d_model, c.d_ff), _t, _t),
    Row("layers/mlp/down/kernel", _LAYER + "mlp.down_proj.weight", ("mlp", "embed"), lambda c: (c.d_ff, c.d_model),
        _t, _t),
    Row("layers/post_mlp_norm/scale", _LAYER + "post_feedforward_layernorm.weight", ("norm",), _D, _same, _same,
        when=lambda c: c.post_norms),
    Row("final_norm/scale", "norm.weight", ("norm",), _D, _same, _same, layer=False),
    Row("unembed/kernel", "lm_head.weight", ("embed", "vocab"), lambda c: (c.d_model, c.vocab_size), _t, _t,
        when=lambda c: c.lm_head and not c.tie_embeddings, layer=False, root=True),
    # Our PRM/ORM scalar head, written as transformers' sequence-classification head layout
    # (`score`: Linear(D, 1)). Only our own import reads it back; see save_hf_checkpoint.
    Row("value_head/kernel", "score.weight", ("embed", None), lambda c: (c.d_model, 1), _t, _t,
        when=lambda c: c.scalar_head and c.value_head_hf == "score", layer=False, root=True),
    Row("value_head/bias", "score.bias", (None,), lambda c: (1,), _same, _same,
        when=lambda c: c.scalar_head and c.value_head_hf == "score", layer=False, root=True),
    # Skywork PRMs: the same Linear(D, 1), named by trl's ValueHead.
    Row("value_head/kernel", "v_head.summary.weight", ("embed", None), lambda c: (c.d_model, 1), _t, _t,
        when=lambda c: c.scalar_head and c.value_head_hf == "v_head.summary", layer=False, root=True),
    Row("value_head/bias", "v_head.summary.bias", (None,), lambda c: (1,), _same, _same,
        when=lambda c: c.scalar_head and c.value_head_hf == "v_head.summary", layer=False, root=True),
    # Qwen2.5-Math-PRM (Qwen2ForProcessRewardModel): score = Sequential(Linear(D, D), ReLU, Linear(D, C)).
    Row("classifier_hidden/kernel", "score.0.weight", ("embed", "mlp"), lambda c: (c.d_model, c.d_model), _t, _t,
        when=lambda c: c.classifier_classes > 0, layer=False, root=True),
    Row("classifier_hidden/bias", "score.0.bias", ("mlp",), _D, _same, _same,
        when=lambda c: c.classifier_classes > 0, layer=False, root=True),
    Row("classifier_out/kernel", "score.2.weight", ("mlp", None), lambda c: (c.d_model, c.classifier_classes), _t, _t,
        when=lambda c: c.classifier_classes > 0, layer=False, root=True),
    Row("classifier_out/bias", "score.2.bias", (None,), lambda c: (c.classifier_classes,), _same, _same,
        when=lambda c: c.classifier_classes > 0, layer=False, root=True),
)

# Present in some checkpoints, never parameters: skipped with a warning.
IGNORABLE = ("rotary_emb.inv_freq",)
# Gemma 3 multimodal: the vision tower is not part of the language model we load.
IGNORABLE_PREFIXES = ("vision_tower.", "multi_modal_projector.", "model.vision_tower.", "model.multi_modal_projector.")


def rows(cfg: Cfg) -> list[Row]:
  return [r for r in ROWS if r.when(cfg)]


def stacked_shape(row: Row, cfg: Cfg) -> tuple[int, ...]:
  return ((cfg.n_layers,) if row.layer else ()) + row.shape(cfg)


def logical_names(row: Row) -> tuple[str | None, ...]:
  return (("layers",) if row.layer else ()) + row.names


def hf_names(row: Row, cfg: Cfg, prefix: str, root: str) -> list[str]:
  """The HF tensor names of a row: one per layer for layer rows."""
  base = (root if row.root else prefix) + row.hf
  return [base.format(i=i) for i in range(cfg.n_layers)] if row.layer else [base]


def detect_prefix(names: list[str]) -> tuple[str, str]:
  """(decoder prefix, root prefix): "model." / "" for text checkpoints, and the Gemma 3
  multimodal layouts ("language_model.model." / "language_model.", or transformers 5's
  "model.language_model." / "")."""
  found = sorted(n[:-len("embed_tokens.weight")] for n in names if n.endswith("embed_tokens.weight"))
  if not found:
    raise KeyError("no '*embed_tokens.weight' tensor: cannot find the decoder's weights")
  prefix = found[0]
  root = prefix[:-len("model.")] if prefix.endswith("model.") and prefix != "model.language_model." else ""
  return prefix, root
