"""Prefill + lax.while_loop sampling over fixed-shape buffers."""
from ttc_jax.decode.prompts import bucket_length, left_pad
from ttc_jax.decode.sampler import (STOP_EOS, STOP_LENGTH, STOP_NEWLINE, STOP_STEP, SampleOutput, decode, jit_sample,
                                    prefill, sample)
from ttc_jax.decode.sampling import SamplingConfig, choose_tokens
