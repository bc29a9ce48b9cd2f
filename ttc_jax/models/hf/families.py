"""Hugging Face config.json <-> `ModelConfig`, per model family.

Families differ in switches and in the defaults transformers' config classes
assume when a key is absent (save_pretrained may leave out values equal to the
class default), so each family is a row of data: its defaults and its switches.
Both config formats are read: older `rope_theta` + `rope_scaling`, and
transformers 5's `rope_parameters` (flat, or nested by layer type for Gemma 3).
"""
import json
import os
from typing import Any

from ttc_jax.models.config import ModelConfig

# model_type -> (defaults of absent keys, fixed switches). Defaults follow transformers' config classes.
_COMMON = {"rms_norm_eps": 1e-6, "rope_theta": 10_000.0, "tie_word_embeddings": False, "hidden_act": "silu"}
_GEMMA = {**_COMMON, "tie_word_embeddings": True, "hidden_act": "gelu_pytorch_tanh", "head_dim": 256,
          "query_pre_attn_scalar": 256, "sliding_window": 4096}
FAMILIES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "llama": ({**_COMMON, "max_position_embeddings": 2048}, {}),
    "mistral": ({**_COMMON, "max_position_embeddings": 131072}, {}),
    "qwen2": ({**_COMMON, "max_position_embeddings": 32768}, {"qkv_bias": True}),  # Always biased; no flag.
    "qwen3": ({**_COMMON, "max_position_embeddings": 32768}, {"qk_norm": True}),
    "gemma2": ({**_GEMMA, "max_position_embeddings": 8192, "attn_logit_softcapping": 50.0,
                "final_logit_softcapping": 30.0, "sliding_window_pattern": 2},
               {"norm_plus_one": True, "post_norms": True, "embed_scale": True}),
    "gemma3_text": ({**_GEMMA, "max_position_embeddings": 131072, "rope_theta": 1_000_000.0,
                     "rope_local_base_freq": 10_000.0, "sliding_window_pattern": 6},
                    {"norm_plus_one": True, "post_norms": True, "embed_scale": True, "qk_norm": True}),
}
SUPPORTED = (*FAMILIES, "gemma3")  # gemma3: the multimodal config; its text part is under text_config.
_ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu_pytorch_tanh": "gelu_tanh", "gelu_tanh": "gelu_tanh"}
_LAYER_TYPES = {"full_attention": "full", "sliding_attention": "sliding"}
HF_DTYPES = ("float32", "bfloat16", "float16")


def text_config(hf: dict) -> dict:
  """The language-model part of a config.json (Gemma 3 multimodal nests it under text_config)."""
  model_type = hf.get("model_type")
  if model_type == "gemma3":
    return {"model_type": "gemma3_text", **hf.get("text_config", {})}
  if model_type not in FAMILIES:
    raise ValueError(f"config.json model_type={model_type!r} is not supported; supported: {', '.join(SUPPORTED)}")
  return hf


def _rope(raw: dict | None, where: str) -> dict[str, Any]:
  """One RoPE parameter dict (old rope_scaling or new rope_parameters) -> ModelConfig fields."""
  raw = raw or {}
  kind = raw.get("rope_type", raw.get("type", "default"))
  if kind == "default":
    return {"rope_scaling": "none"}
  if kind == "linear":
    return {"rope_scaling": "linear", "rope_factor": float(raw["factor"])}
  if kind == "llama3":
    return {"rope_scaling": "llama3", "rope_factor": float(raw["factor"]),
            "rope_low_freq_factor": float(raw["low_freq_factor"]),
            "rope_high_freq_factor": float(raw["high_freq_factor"]),
            "rope_original_max_len": int(raw["original_max_position_embeddings"])}
  raise ValueError(f"config.json {where}: rope type {kind!r} is not supported (default, linear, llama3)")


def _rope_fields(hf: dict, defaults: dict) -> dict[str, Any]:
  """rope_theta, scaling and the local (sliding-layer) theta, from either config format."""
  params = hf.get("rope_parameters")
  if params and ("full_attention" in params or "sliding_attention" in params):  # Nested by layer type.
    full, local = params.get("full_attention", {}), params.get("sliding_attention")
    out = {"rope_theta": float(full.get("rope_theta") or hf.get("rope_theta") or defaults["rope_theta"]),
           **_rope(full, "rope_parameters.full_attention")}
    if local is not None:
      if _rope(local, "rope_parameters.sliding_attention")["rope_scaling"] != "none":
        raise ValueError("config.json rope_parameters.sliding_attention: scaled RoPE on sliding layers is not supported")
      out["local_rope_theta"] = float(local.get("rope_theta") or defaults.get("rope_local_base_freq", 0.0))
    return out
  if params:  # Flat transformers-5 form.
    out = {"rope_theta": float(params.get("rope_theta") or hf.get("rope_theta") or defaults["rope_theta"]),
           **_rope(params, "rope_parameters")}
  else:
    out = {"rope_theta": float(hf.get("rope_theta") or defaults["rope_theta"]), **_rope(hf.get("rope_scaling"), "rope_scaling")}
  if "rope_local_base_freq" in defaults:
    out["local_rope_theta"] = float(hf.get("rope_local_base_freq") or defaults["rope_local_base_freq"])
  return out


def _layer_types(hf: dict, model_type: str, n_layers: int, window: int) -> tuple[str, ...]:
  if not window:
    return ()
  if hf.get("layer_types"):
    unknown = sorted(set(hf["layer_types"]) - set(_LAYER_TYPES))
    if unknown:
      raise ValueError(f"config.json layer_types has {unknown}; known: {sorted(_LAYER_TYPES)}")
    return tuple(_LAYER_TYPES[t] for t in hf["layer_types"])
  if model_type in ("gemma2", "gemma3_text"):
    # Older configs: layer i is sliding unless (i + 1) is a multiple of the pattern (Gemma 2: 2, Gemma 3: 6).
    pattern = hf.get("sliding_window_pattern") or FAMILIES[model_type][0]["sliding_window_pattern"]
    return tuple("full" if (i + 1) % pattern == 0 else "sliding" for i in range(n_layers))
  if model_type in ("qwen2", "qwen3"):  # transformers: layers from max_window_layers on slide.
    first = hf.get("max_window_layers", n_layers)
    return tuple("sliding" if i >= first else "full" for i in range(n_layers))
  return ()  # Mistral: every layer slides.


def _window(hf: dict, model_type: str, defaults: dict) -> int:
  if model_type in ("qwen2", "qwen3") and not hf.get("use_sliding_window", False):
    return 0
  window = hf.get("sliding_window", defaults.get("sliding_window"))
  return int(window or 0)  # Mistral writes null for "no window".


def model_config_from_hf(hf: dict, *, valid_vocab_size: int = 0, dtype: str | None = None,
                         param_dtype: str | None = None, **overrides) -> ModelConfig:
  """A config.json dict -> ModelConfig. dtype / param_dtype default to the checkpoint's dtype."""
  hf = text_config(hf)
  model_type = hf["model_type"]
  defaults, switches = FAMILIES[model_type]
  get = lambda key: hf[key] if hf.get(key) is not None else defaults[key]
  act_name = hf.get("hidden_activation") or get("hidden_act")
  if act_name not in _ACTIVATIONS:
    raise ValueError(f"config.json hidden_act={act_name!r} is not supported; known: {sorted(_ACTIVATIONS)}")
  if hf.get("mlp_bias"):
    raise ValueError("config.json mlp_bias=true: MLP biases are not supported by the Transformer")
  fields = dict(switches)
  if hf.get("attention_bias"):
    # Llama and Qwen3 put a bias on o_proj too, which the Transformer does not have.
    raise ValueError(f"config.json attention_bias=true ({model_type}): the o_proj bias it adds is not supported")
  n_heads, d_model = hf["num_attention_heads"], hf["hidden_size"]
  n_layers = hf["num_hidden_layers"]
  window = _window(hf, model_type, defaults)
  source_dtype = hf.get("dtype") or hf.get("torch_dtype") or "float32"
  if source_dtype not in HF_DTYPES:
    raise ValueError(f"config.json dtype={source_dtype!r} must be one of {HF_DTYPES}")
  fields.update(
      vocab_size=hf["vocab_size"], d_model=d_model, n_layers=n_layers, n_heads=n_heads,
      n_kv_heads=hf.get("num_key_value_heads") or n_heads,
      head_dim=hf.get("head_dim") or defaults.get("head_dim") or d_model // n_heads,
      d_ff=hf["intermediate_size"], max_len=get("max_position_embeddings"), norm_eps=float(get("rms_norm_eps")),
      tie_embeddings=bool(get("tie_word_embeddings")), activation=_ACTIVATIONS[act_name],
      sliding_window=window, layer_types=_layer_types(hf, model_type, n_layers, window),
      valid_vocab_size=valid_vocab_size if valid_vocab_size < hf["vocab_size"] else 0,
      dtype=dtype or source_dtype, param_dtype=param_dtype or source_dtype, **_rope_fields(hf, defaults))
  if model_type in ("gemma2", "gemma3_text"):
    fields["query_pre_attn_scalar"] = float(get("query_pre_attn_scalar"))
  if model_type == "gemma2":
    fields["attn_softcap"] = float(hf.get("attn_logit_softcapping", defaults["attn_logit_softcapping"]) or 0.0)
    fields["final_softcap"] = float(hf.get("final_logit_softcapping", defaults["final_logit_softcapping"]) or 0.0)
  fields.update(hf.get("ttc_jax", {}).get("model", {}))  # Fields with no HF key, written by our export.
  fields.update(overrides)
  return ModelConfig(**fields)


def tokenizer_size(model_dir: str) -> int:
  """Ids the tokenizer.json can produce (max id + 1, added tokens included); 0 without one."""
  path = os.path.join(model_dir, "tokenizer.json")
  if not os.path.exists(path):
    return 0
  with open(path) as f:
    tok = json.load(f)
  vocab = tok.get("model", {}).get("vocab") or {}
  ids = list(vocab.values()) if isinstance(vocab, dict) else list(range(len(vocab)))  # Unigram: a list.
  ids += [t["id"] for t in tok.get("added_tokens", [])]
  return max(ids) + 1 if ids else 0


# Verifier heads, recognised by their tensors (architectures names vary between published PRMs).
PRM_ARCHITECTURES = ("Qwen2ForProcessRewardModel",)


def head_fields(hf: dict, tensors: dict[str, tuple[int, ...]]) -> dict[str, Any]:
  """ModelConfig fields of a reward model's head, from tensor names and shapes ({} for a plain LM).

  Qwen2.5-Math-PRM: `score.0` / `score.2` (the two-layer classifier), no lm_head.
  Skywork PRM: `v_head.summary` (a Linear(D, 1) value head) beside the LM.
  """
  fields: dict[str, Any] = {}
  arch = set(hf.get("architectures") or ())
  if "score.2.weight" in tensors:
    fields["classifier_classes"] = int(tensors["score.2.weight"][0])
  elif arch & set(PRM_ARCHITECTURES):
    raise ValueError(f"architectures={sorted(arch)} but no score.2.weight tensor: is the checkpoint complete?")
  if "v_head.summary.weight" in tensors:
    fields.update(scalar_head=True, value_head_hf="v_head.summary")
  if fields and "lm_head.weight" not in tensors and not hf.get("tie_word_embeddings"):
    fields["lm_head"] = False  # A head-only checkpoint (Qwen2ForProcessRewardModel).
  return fields


def _head_tensor_shapes(model_dir: str) -> dict[str, tuple[int, ...]]:
  """Shapes of the tensors outside the decoder (heads); headers only, no weight is read."""
  from ttc_jax.models.hf.safetensors_io import Checkpoint
  if not any(f.endswith(".safetensors") or f.endswith(".index.json") for f in os.listdir(model_dir)):
    return {}  # config.json alone (shape-only uses): no head to detect.
  ckpt = Checkpoint(model_dir)
  return {name: tuple(ckpt.get(name).shape) for name in ckpt.names()
          if name.startswith(("score.", "v_head.", "lm_head."))}


def read_hf_config(model_dir: str, **kwargs) -> tuple[ModelConfig, dict]:
  """(ModelConfig, the text part of config.json) of a Hugging Face model directory.

  Reward-model heads (`head_fields`) are recognised from the checkpoint's tensors.
  """
  path = os.path.join(model_dir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} is missing: is {model_dir} a Hugging Face model directory?")
  with open(path) as f:
    hf = json.load(f)
  try:
    text = text_config(hf)
    heads = head_fields(text, _head_tensor_shapes(model_dir))
    return model_config_from_hf(hf, valid_vocab_size=tokenizer_size(model_dir), **{**heads, **kwargs}), text
  except (ValueError, KeyError) as e:
    raise ValueError(f"{path}: {e}") from e


# ------------------------------------------------------------------------------------------------ export


def infer_model_type(cfg: ModelConfig) -> str:
  """The family whose switches `cfg` has; this project's own models are "llama"."""
  if cfg.post_norms:
    return "gemma3_text" if cfg.qk_norm else "gemma2"
  if cfg.qk_norm:
    return "qwen3"
  if cfg.qkv_bias:
    return "qwen2"
  if cfg.sliding_window and not cfg.layer_types:
    return "mistral"
  return "llama"


def _check_expressible(cfg: ModelConfig, model_type: str) -> None:
  """Switches the family's config.json cannot express would be silently lost."""
  defaults, switches = FAMILIES[model_type]
  expected = {k: False for k in ("qkv_bias", "qk_norm", "norm_plus_one", "post_norms", "embed_scale")}
  expected.update(switches)
  wrong = [f"{k}={getattr(cfg, k)}" for k, v in expected.items() if getattr(cfg, k) != v]
  if model_type != "gemma2" and (cfg.attn_softcap or cfg.final_softcap):
    wrong.append("soft-capping")
  if model_type not in ("gemma2", "gemma3_text") and cfg.activation != "silu":
    wrong.append(f"activation={cfg.activation}")
  if wrong:
    raise ValueError(f"model_type {model_type!r} cannot express this model ({', '.join(wrong)}); "
                     f"leave model_type empty to infer {infer_model_type(cfg)!r}")


def hf_config_from_model(cfg: ModelConfig, model_type: str = "", *, dtype: str | None = None,
                         bos_id: int | None = None, eos_id: int | list[int] | None = None) -> dict:
  """config.json for `cfg` in the older format (rope_theta + rope_scaling), which transformers 4 and 5 read."""
  model_type = model_type or infer_model_type(cfg)
  if model_type == "gemma3":
    model_type = "gemma3_text"  # Only the text model is exported.
  if model_type not in FAMILIES:
    raise ValueError(f"model_type {model_type!r} is not supported; supported: {', '.join(FAMILIES)}")
  _check_expressible(cfg, model_type)
  arch = {"llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2", "qwen3": "Qwen3", "gemma2": "Gemma2",
          "gemma3_text": "Gemma3"}[model_type]
  dtype = dtype or cfg.param_dtype
  head = "ForProcessRewardModel" if cfg.classifier_classes and not cfg.lm_head else "ForCausalLM"
  hf = {"architectures": [f"{arch}{head}"], "model_type": model_type, "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model, "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads, "head_dim": cfg.head_size, "intermediate_size": cfg.d_ff,
        "max_position_embeddings": cfg.max_len, "rms_norm_eps": cfg.norm_eps, "rope_theta": cfg.rope_theta,
        "tie_word_embeddings": cfg.tie_embeddings, "attention_bias": False, "torch_dtype": dtype, "dtype": dtype,
        "hidden_act": {"silu": "silu", "gelu_tanh": "gelu_pytorch_tanh"}[cfg.activation]}
  if cfg.rope_scaling == "linear":
    hf["rope_scaling"] = {"rope_type": "linear", "factor": cfg.rope_factor}
  elif cfg.rope_scaling == "llama3":
    hf["rope_scaling"] = {"rope_type": "llama3", "factor": cfg.rope_factor, "low_freq_factor": cfg.rope_low_freq_factor,
                          "high_freq_factor": cfg.rope_high_freq_factor,
                          "original_max_position_embeddings": cfg.rope_original_max_len}
  if model_type in ("gemma2", "gemma3_text"):
    hf["hidden_activation"] = hf["hidden_act"]
    scalar = cfg.query_pre_attn_scalar or cfg.head_size
    hf["query_pre_attn_scalar"] = int(scalar) if float(scalar).is_integer() else scalar  # transformers 5 checks int.
  if model_type == "gemma2":
    hf["attn_logit_softcapping"] = cfg.attn_softcap or None
    hf["final_logit_softcapping"] = cfg.final_softcap or None
  if model_type == "gemma3_text":
    hf["rope_local_base_freq"] = cfg.local_rope_theta or cfg.rope_theta
  if cfg.sliding_window:
    hf["sliding_window"] = cfg.sliding_window
    if model_type in ("qwen2", "qwen3"):
      hf["use_sliding_window"] = True
    if cfg.layer_types:
      hf["layer_types"] = [f"{t}_attention" for t in cfg.layer_types]
  elif model_type in ("mistral", "gemma2", "gemma3_text"):
    hf["sliding_window"] = None
    hf["layer_types"] = ["full_attention"] * cfg.n_layers
  if bos_id is not None:
    hf["bos_token_id"] = bos_id
  if eos_id is not None:
    hf["eos_token_id"] = eos_id
  # What config.json has no key for, so an import restores the same ModelConfig.
  defaults = ModelConfig()
  extra = {k: getattr(cfg, k) for k in ("lm_head", "scalar_head", "classifier_classes", "value_head_hf",
                                        "valid_vocab_size", "remat",
                                        "attention_impl", "decode_attention_impl")
           if getattr(cfg, k) != getattr(defaults, k)}
  if extra:
    hf["ttc_jax"] = {"model": extra}
  return hf
