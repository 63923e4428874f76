"""Scope policies on the toy net and on tiny random BERT / RoBERTa / mBART / ESM (real library naming)."""
from __future__ import annotations

import pytest
import torch

from smc_lib.errors import SMCError
from smc_lib.scope import SCOPES, layer_index, param_kind, prunable

BERT_ENCODER = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                "intermediate.dense", "output.dense"]


def _no_bias_or_norm(params: dict) -> None:
    for name, p in params.items():
        assert p.ndim >= 2 and not name.endswith("bias") and "LayerNorm" not in name and "norm" not in name


def test_toy_all_encoder_custom(toy_task, toy_model):
    assert list(prunable(toy_model, "all")) == ["embed.weight", "fc1.weight", "fc2.weight", "head.weight"]
    assert list(prunable(toy_model, "encoder", encoder_patterns=toy_task.encoder_patterns)) == \
        ["fc1.weight", "fc2.weight"]
    assert list(prunable(toy_model, "custom", include=[r"^fc"], exclude=[r"fc2"])) == ["fc1.weight"]
    assert list(prunable(toy_model, "all", exclude=r"^head")) == ["embed.weight", "fc1.weight", "fc2.weight"]
    _no_bias_or_norm(prunable(toy_model, "all"))


def test_bert_all_and_encoder(tiny_bert):
    every = prunable(tiny_bert, "all")
    _no_bias_or_norm(every)
    matrices = {n for n, p in tiny_bert.named_parameters() if p.ndim >= 2}
    assert set(every) == matrices                       # `all`: every weight matrix, embeddings and head included
    assert "bert.embeddings.word_embeddings.weight" in every and "classifier.weight" in every
    enc = prunable(tiny_bert, "encoder")
    expected = {f"bert.encoder.layer.{i}.{m}.weight" for i in range(2) for m in BERT_ENCODER}
    assert set(enc) == expected
    assert list(enc) == [n for n in every if n in expected]          # model order kept


def test_custom_on_bert(tiny_bert):
    got = prunable(tiny_bert, "custom", include=[r"layer\.1\..*query"], exclude=None)
    assert list(got) == ["bert.encoder.layer.1.attention.self.query.weight"]
    got = prunable(tiny_bert, "custom", exclude=[r"embeddings", r"classifier", r"pooler"])
    assert set(got) == set(prunable(tiny_bert, "encoder"))


def test_roberta_mbart_esm_encoder_scope():
    from transformers import (MBartConfig, MBartForConditionalGeneration, RobertaConfig,
                              RobertaForMultipleChoice)

    roberta = RobertaForMultipleChoice(RobertaConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                                                     num_attention_heads=2, intermediate_size=32,
                                                     max_position_embeddings=40))
    assert len(prunable(roberta, "encoder")) == 2 * 6
    mbart = MBartForConditionalGeneration(MBartConfig(
        vocab_size=50, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32))
    enc = prunable(mbart, "encoder")
    assert len(enc) == 6 + 10                           # encoder: q,k,v,o,fc1,fc2; decoder adds cross-attention
    assert not any("embed" in n or "shared" in n for n in enc)
    assert param_kind("model.shared.weight") == "embedding"
    esm = pytest.importorskip("esm")
    net = esm.model.esm2.ESM2(num_layers=2, embed_dim=32, attention_heads=2)
    enc = prunable(net, "encoder")
    assert len(enc) == 2 * 6 and all(n.startswith("layers.") for n in enc)
    assert "embed_tokens.weight" in prunable(net, "all")


def test_biases_and_norms_never(tiny_bert):
    for policy, kw in (("all", {}), ("encoder", {}), ("custom", {"include": [r".*"]})):
        _no_bias_or_norm(prunable(tiny_bert, policy, **kw))
    with pytest.raises(SMCError, match="matches no weight"):
        prunable(tiny_bert, "custom", include=[r"LayerNorm", r"bias"])


def test_errors(toy_model):
    with pytest.raises(SMCError, match="unknown scope 'attention'.*all, custom, encoder"):
        prunable(toy_model, "attention")
    with pytest.raises(SMCError, match="matches no weight matrix"):
        prunable(toy_model, "encoder")                  # default transformer regexes: the toy net has no layers
    with pytest.raises(SMCError, match="matches no weight matrix"):
        prunable(toy_model, "custom", include=["nothing_here"])
    with pytest.raises(SMCError, match="only apply to scope 'custom'"):
        prunable(toy_model, "all", include=["fc1"])
    with pytest.raises(SMCError, match="bad include regex"):
        prunable(toy_model, "custom", include=["("])
    assert SCOPES == ("all", "encoder", "custom")


@pytest.mark.parametrize("name, layer, kind", [
    ("bert.embeddings.word_embeddings.weight", -1, "embedding"),
    ("roberta.encoder.layer.11.attention.self.value.weight", 11, "attention"),
    ("roberta.encoder.layer.3.attention.output.dense.weight", 3, "attention"),
    ("roberta.encoder.layer.3.output.dense.weight", 3, "ffn"),
    ("model.decoder.layers.2.encoder_attn.q_proj.weight", 2, "attention"),
    ("layers.5.fc2.weight", 5, "ffn"),
    ("classifier.weight", -1, "head"),
    ("lm_head.dense.weight", -1, "head"),
    ("bert.pooler.dense.weight", -1, "head"),
    ("embed.weight", -1, "embedding"),
    ("fc1.weight", -1, "ffn"),
    ("conv.weight", -1, "other"),
    ("decoder.generate_left.value.weight", -1, "other"),      # GTS's gated unit, not an attention value
    ("decoder.attn.attn.weight", -1, "attention"),
    ("encoder.gru.layers.1.0.weight_hh", 1, "other"),
    # GTS's `embedder` holds a whole MiniLM: only its embedding tables are embeddings
    ("embedder.model.embeddings.word_embeddings.weight", -1, "embedding"),
    ("embedder.model.encoder.layer.0.attention.self.query.weight", 0, "attention"),
    ("embedder.model.encoder.layer.3.intermediate.dense.weight", 3, "ffn"),
    ("embedder.model.encoder.layer.5.output.dense.weight", 5, "ffn"),
    ("decoder.op_embedding.weight", -1, "embedding"),
    ("model.encoder.embed_tokens.weight", -1, "embedding"),
    ("model.shared.weight", -1, "embedding"),
])
def test_layer_index_and_kind(name, layer, kind):
    assert layer_index(name) == layer
    assert param_kind(name) == kind


def test_tied_parameters_once():
    emb = torch.nn.Embedding(10, 4)
    model = torch.nn.Module()
    model.inp, model.out = emb, torch.nn.Linear(4, 10, bias=False)
    model.out.weight = emb.weight
    assert list(prunable(model)) == ["inp.weight"]
