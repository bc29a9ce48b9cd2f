"""Incremental verifier scoring: each candidate keeps a verifier KV cache and feeds it one step at a time.

`score_block` feeds any format's block (`search.verifier_feed` builds it). `score_step` is
this project's PRM (format `ttc`), fed the policy's tokens as sampled: the PRM sees exactly
the layout it is trained and scored on (`verify.scored_text`):
[bos] + prompt + step_0 + [nl] + step_1 + [nl] + ... with its score read at the newline that
ends each step. A step is fed as one block of W = max_step_tokens slots written at the
row's own verifier cache index; the rest of a shorter step's block is invalid and takes no slot. So
no prefix is ever re-encoded. Mapping policy output to that layout:
  * a step ending in newline is fed as is;
  * a step ending in EOS (the answer line) is fed with the EOS replaced by the
    newline, exactly as `encode_scored_solution` ends every step;
  * a step with no content (a bare newline or EOS) is not fed and keeps the
    previous score, as `synthetic.solution_steps` drops empty lines;
  * a truncated step (no stop token) is fed as is and read at its last token.
"The newline" is the stop rule's delimiter token. When the delimiter is not one
token (`StopRule.delimiter_id` < 0: "\n\n" written as "\n" "\n", or merged into
".\n\n"), there is no single id to stand in for EOS: a step ending in EOS is fed
without its EOS and read at its last content token; a step ending at the delimiter
is fed as sampled (its last token completes the delimiter) and read there. A step
of one token (the delimiter alone, or a merged ".\n\n") counts as empty.
"""
import jax
import jax.numpy as jnp

from ttc_jax.decode.sampler import STOP_EOS, STOP_NEWLINE, prompt_positions
from ttc_jax.models import init_cache
from ttc_jax.models.kv_cache import KVCache
from ttc_jax.tokenization.steps import StopRule


def prefill_prm(prm, params, prompts_BxP: jax.Array, valid_BxP: jax.Array, cache_len: int) -> tuple[KVCache, jax.Array]:
  """Encodes left-padded prompts into a fresh PRM cache; returns (cache, next position per row)."""
  cache = init_cache(prm.cfg, prompts_BxP.shape[0], cache_len, fresh=True)
  last_Bx1 = jnp.full((prompts_BxP.shape[0], 1), prompts_BxP.shape[1] - 1, jnp.int32)  # Nothing is read here.
  out = prm.apply(params, prompts_BxP, prompt_positions(valid_BxP), valid_BxP, cache, read_BxK=last_Bx1)
  return out.cache, jnp.sum(valid_BxP, axis=1).astype(jnp.int32)


def content_lengths(step_len_B: jax.Array, stop_reason_B: jax.Array) -> jax.Array:
  """int32 tokens of a step without its stop token (newline / EOS)."""
  stopped = (stop_reason_B == STOP_EOS) | (stop_reason_B == STOP_NEWLINE)
  return step_len_B - stopped.astype(jnp.int32)


def score_step(prm, params, cache: KVCache, positions_B: jax.Array, step_BxW: jax.Array, step_len_B: jax.Array,
               stop_reason_B: jax.Array, feed_B: jax.Array, *, stop: StopRule):
  """Feeds one step per row to the PRM and reads P(correct so far) at its last token.

  Args:
    cache: the PRM cache; row b's block is written at `cache.index_B[b]`.
    positions_B: int32 RoPE position of each row's next PRM token.
    step_BxW: int32 the step's tokens (pad after `step_len_B`), stop token included.
    stop_reason_B: int32 decode.STOP_* of the step.
    feed_B: bool rows to score (active candidates); empty steps are skipped anyway.

  Returns:
    (prob_B float32 sigmoid of the value at the step's last token,
     cache with each row's index advanced by its fed tokens,
     fed_B int32 tokens fed per row, 0 where the row was not scored).
  """
  w = step_BxW.shape[1]
  if stop.delimiter_id >= 0:  # Static: EOS stands in as the delimiter token.
    tokens_BxW, feed_len_B = jnp.where(stop.is_eos(step_BxW), stop.delimiter_id, step_BxW), step_len_B
  else:  # No one-token delimiter: EOS is not fed, the score is read before it.
    tokens_BxW, feed_len_B = step_BxW, step_len_B - (stop_reason_B == STOP_EOS).astype(jnp.int32)
  fed_B = jnp.where(feed_B & (content_lengths(step_len_B, stop_reason_B) > 0), feed_len_B, 0)
  j_W = jnp.arange(w)
  valid_BxW = j_W[None] < fed_B[:, None]
  last_B = jnp.clip(fed_B - 1, 0, w - 1)
  out = prm.apply(params, tokens_BxW, positions_B[:, None] + j_W[None], valid_BxW, cache, read_BxK=last_B[:, None])
  value_B = out.values_BxT[:, 0]
  return jax.nn.sigmoid(value_B.astype(jnp.float32)), out.cache, fed_B


def score_block(prm, params, reader, cache: KVCache, positions_B: jax.Array, tokens_BxK: jax.Array, fed_B: jax.Array,
                read_B: jax.Array):
  """Feeds one block per row (its first fed_B tokens valid) at the row's `cache.index_B` and reads the step score.

  Returns (prob_B float32 per `reader` at index read_B of the block (meaningless where fed_B == 0),
  the cache with each row's index advanced by its fed_B tokens).
  """
  k = tokens_BxK.shape[1]
  j_K = jnp.arange(k)
  valid_BxK = j_K[None] < fed_B[:, None]
  read_Bx1 = jnp.clip(read_B, 0, k - 1)[:, None]
  out = prm.apply(params, tokens_BxK, positions_B[:, None] + j_K[None], valid_BxK, cache, read_BxK=read_Bx1)
  return reader.probs(out)[:, 0], out.cache
