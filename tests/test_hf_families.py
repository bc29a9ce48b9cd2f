"""config.json -> ModelConfig per family (both config formats), and back."""
import pytest

from ttc_jax.models.config import ModelConfig
from ttc_jax.models.hf import families
from ttc_jax.testing.tiny_hf import CONFIGS


def _cfg(family, **changes):
  return families.model_config_from_hf({**CONFIGS[family], **changes})


def test_llama3_rope_scaling_and_untied_head():
  cfg = _cfg("llama")
  assert (cfg.rope_scaling, cfg.rope_factor, cfg.rope_original_max_len) == ("llama3", 32.0, 64)
  assert (cfg.rope_theta, cfg.tie_embeddings, cfg.n_kv_heads, cfg.head_size) == (500000.0, False, 2, 8)
  assert not (cfg.qkv_bias or cfg.qk_norm or cfg.post_norms) and cfg.activation == "silu"
  assert _cfg("llama", tie_word_embeddings=None).tie_embeddings is False  # Llama's class default.


def test_llama_defaults_when_keys_are_absent():
  hf = {k: v for k, v in CONFIGS["llama"].items() if k not in ("num_key_value_heads", "head_dim", "rope_scaling")}
  cfg = families.model_config_from_hf(hf)
  assert (cfg.n_kv_heads, cfg.head_size, cfg.rope_scaling) == (4, 8, "none")


def test_qwen2_always_has_qkv_bias_and_no_window_unless_enabled():
  cfg = _cfg("qwen2")
  assert cfg.qkv_bias and cfg.tie_embeddings and cfg.sliding_window == 0
  assert families.model_config_from_hf(CONFIGS["qwen2"], valid_vocab_size=90).valid_vocab_size == 90


def test_qwen3_qk_norm_and_attention_bias_refused():
  assert _cfg("qwen3").qk_norm
  with pytest.raises(ValueError, match="attention_bias=true.*o_proj bias"):
    _cfg("qwen3", attention_bias=True)


def test_mistral_window_all_layers_or_none():
  cfg = _cfg("mistral")
  assert cfg.sliding_window == 16 and cfg.sliding_layers == (True, True)
  assert _cfg("mistral", sliding_window=None).sliding_layers == (False, False)


def test_gemma2_switches_and_alternating_layers_without_layer_types():
  cfg = _cfg("gemma2")
  assert cfg.norm_plus_one and cfg.post_norms and cfg.embed_scale and cfg.activation == "gelu_tanh"
  assert (cfg.attn_softcap, cfg.final_softcap, cfg.query_pre_attn_scalar) == (50.0, 30.0, 8.0)
  assert cfg.tie_embeddings  # Gemma's default.
  assert cfg.layer_types == ("sliding", "full")  # (i + 1) % 2 != 0 -> sliding.


def test_gemma3_nested_rope_parameters_transformers5():
  cfg = _cfg("gemma3_text")
  assert cfg.qk_norm and cfg.post_norms and cfg.attn_softcap == 0
  assert (cfg.rope_theta, cfg.rope_scaling, cfg.rope_factor, cfg.local_rope_theta) == (1e6, "linear", 8.0, 1e4)
  assert cfg.layer_types == ("sliding", "sliding", "full")


def test_gemma3_old_format_and_multimodal_text_config():
  old = {k: v for k, v in CONFIGS["gemma3_text"].items() if k not in ("rope_parameters", "layer_types")}
  old.update(num_hidden_layers=7, rope_theta=1e6, rope_local_base_freq=1e4, sliding_window_pattern=6,
             rope_scaling={"type": "linear", "factor": 8.0})
  cfg = families.model_config_from_hf({"model_type": "gemma3", "text_config": old})
  assert cfg.layer_types == ("sliding",) * 5 + ("full", "sliding")
  assert (cfg.rope_theta, cfg.rope_scaling, cfg.local_rope_theta) == (1e6, "linear", 1e4)


def test_flat_rope_parameters_with_null_rope_theta():
  hf = {**CONFIGS["llama"], "rope_theta": None}
  hf["rope_parameters"] = {"rope_type": "llama3", "rope_theta": 5e5, **{k: v for k, v in hf.pop("rope_scaling").items()
                                                                         if k != "rope_type"}}
  cfg = families.model_config_from_hf(hf)
  assert (cfg.rope_theta, cfg.rope_scaling, cfg.rope_factor) == (5e5, "llama3", 32.0)


def test_unsupported_model_type_names_it_and_the_list():
  with pytest.raises(ValueError, match=r"model_type='phi3' is not supported; supported: llama, mistral, qwen2"):
    families.model_config_from_hf({**CONFIGS["llama"], "model_type": "phi3"})


def test_unsupported_rope_type_is_named():
  with pytest.raises(ValueError, match="rope type 'yarn' is not supported"):
    _cfg("llama", rope_scaling={"rope_type": "yarn", "factor": 4.0})


def test_dtype_follows_the_checkpoint_unless_overridden():
  assert _cfg("llama", torch_dtype="bfloat16").param_dtype == "bfloat16"
  assert families.model_config_from_hf({**CONFIGS["llama"], "dtype": "bfloat16"}, param_dtype="float32").param_dtype == "float32"


@pytest.mark.parametrize("family", list(CONFIGS))
def test_config_json_round_trip(family):
  cfg = _cfg(family)
  hf = families.hf_config_from_model(cfg)
  assert hf["model_type"] == family
  assert families.model_config_from_hf(hf) == cfg


def test_own_models_export_as_llama_and_keep_their_reward_head():
  cfg = ModelConfig(scalar_head=True, tie_embeddings=True, head_dim=32)  # config.json always names head_dim.
  hf = families.hf_config_from_model(cfg)
  assert hf["model_type"] == "llama" and hf["ttc_jax"]["model"]["scalar_head"] is True
  assert families.model_config_from_hf(hf) == cfg


@pytest.mark.parametrize("impl", ["auto", "xla", "pallas"])
def test_decode_attention_impl_round_trips(impl):
  """An imported model keeps the default (auto: the kernel on GPUs) unless the export pinned another."""
  cfg = ModelConfig(tie_embeddings=True, head_dim=32, decode_attention_impl=impl)
  hf = families.hf_config_from_model(cfg)
  assert ("decode_attention_impl" in hf.get("ttc_jax", {}).get("model", {})) == (impl != "auto")
  assert families.model_config_from_hf(hf) == cfg


def test_export_refuses_a_family_that_cannot_express_the_model():
  with pytest.raises(ValueError, match="model_type 'llama' cannot express this model \\(qkv_bias=True"):
    families.hf_config_from_model(_cfg("qwen2"), "llama")
