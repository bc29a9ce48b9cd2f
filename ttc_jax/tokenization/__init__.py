"""Tokenizers behind one interface, chat templates, and the step delimiter's stop rule."""

from ttc_jax.tokenization.base import Tokenizer
from ttc_jax.tokenization.chat import render_chat
from ttc_jax.tokenization.hf import HFTokenizer
from ttc_jax.tokenization.load import load_tokenizer
from ttc_jax.tokenization.sentencepiece import SentencePieceTokenizer
from ttc_jax.tokenization.steps import LINE_STEPS, PARAGRAPH_STEPS, StepFormat, StopRule

__all__ = ["Tokenizer", "render_chat", "HFTokenizer", "load_tokenizer", "SentencePieceTokenizer", "LINE_STEPS",
           "PARAGRAPH_STEPS", "StepFormat", "StopRule"]
