"""Protein thermostability: readers on the real files and on malformed records, the paper's class counts,
cropping, and tiny random-init ESM-2 / ESM-1b / TAPE models under every timing with scope `encoder`."""
from __future__ import annotations

import collections
import random
from pathlib import Path

import pytest
import torch

from smc_lib.errors import SMCError
from smc_lib.tasks.protein import data as D

DATA = Path(__file__).resolve().parents[1] / "data"
needs_data = pytest.mark.skipif(not (DATA / "protein").is_dir(), reason="data/ not pulled (make data)")


@needs_data
def test_hotprotein_class_counts_equal_the_papers():
    def counts(ds):
        rows = D.load_split(DATA, ds, "train") + D.load_split(DATA, ds, "test")
        return collections.Counter(p.label for p in rows)

    assert counts("hp-s2c2") == {1: 1026, 0: 939}                       # hot / cold, §3.3
    assert [counts("hp-s2c5")[k] for k in range(5)] == [73, 387, 195, 196, 189]


@needs_data
def test_every_reader_on_its_real_file():
    assert len(D.load_split(DATA, "hp-s2c2", "train")) == 1768 and len(D.load_split(DATA, "hp-s2c2", "test")) == 197
    hps = D.load_split(DATA, "hp-s", "train") + D.load_split(DATA, "hp-s", "test")
    assert collections.Counter(p.label for p in hps) == {k: 8000 for k in range(4)}
    assert not {p.uid for p in D.load_split(DATA, "hp-s", "train")} & {p.uid for p in D.load_split(DATA, "hp-s", "test")}
    melt = D.load_split(DATA, "meltome", "train")
    assert len(melt) == 6240 and set(p.label for p in melt) == {0, 1, 2}
    assert all(p.label == D.ogt_class(p.value) for p in melt)                  # organism class from ogt, not Tm
    flip = D.read_flip_meltome(DATA / "protein/flip_meltome_biotrainer/meltome_cv_test.fasta")
    assert len(flip) == 100 and {s for _, s in flip} <= {"train", "val", "test"} and all(p.value > 0 for p, _ in flip)
    assert all("J" not in p.sequence for p in hps)                          # ESM has no J: encoded as X


def test_ogt_bounds():
    assert [D.ogt_class(t) for t in (10, 44.9, 45, 79.9, 80, 100)] == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("text,match", [
    ("gene,sequence,tgt_reg,set,validation\nG1,MKV1L,80.0,train,FALSE\n", r"G1 \(line 2\) has '1' at position 4"),
    ("gene,sequence,tgt_reg,set,validation\nG1,MKVL,hot,train,FALSE\n", r":2: tgt_reg 'hot' is not a number"),
    ("gene,seq,tgt_reg\nG1,MKVL,80\n", "header lacks"),
])
def test_malformed_hotprotein_names_file_record_position(tmp_path, text, match):
    path = tmp_path / "s2c2_0_train.csv"
    path.write_text(text)
    with pytest.raises(SMCError, match=match) as e:
        D.read_hotprotein(path, "hp-s2c2")
    assert str(path) in str(e.value)


def test_malformed_fasta_and_deeptm(tmp_path):
    fasta = tmp_path / "x.fasta"
    fasta.write_text(">a\nMKV\n>b\nMK*V\n")
    with pytest.raises(SMCError, match=r"record 'b' \(#2\) has '\*' at position 3"):
        [D.check_sequence(s, fasta, f"{h!r} (#{i + 1})") for i, (h, s) in enumerate(D.read_fasta(fasta))]
    fasta.write_text("MKV\n>a\nMKV\n")
    with pytest.raises(SMCError, match="before the first '>'"):
        D.read_fasta(fasta)
    csv = tmp_path / "Tm50Train.csv"
    csv.write_text("\ufeffuniprot_id,tm,ogt,ph,sequence\n1,60,abc,7,MKV\n")
    with pytest.raises(SMCError, match=r":2: ogt 'abc'"):
        D.read_deeptm(csv)


def test_crop_is_random_in_training_and_fixed_in_evaluation():
    rng = random.Random(0)
    seq = "".join(rng.choice(D.STANDARD) for _ in range(3000))
    assert D.crop(seq, 1022) == seq[:1022]
    windows = {D.crop(seq, 1022, random.Random(s)) for s in range(5)}
    assert len(windows) > 1 and all(len(w) == 1022 and w in seq for w in windows)
    assert D.crop("MKV", 1022, random.Random(0)) == "MKV"


# ------------------------------------------------------------------------------------------- models
def tiny_esm1b():
    from esm.model.esm1 import ProteinBertModel
    import argparse
    args = argparse.Namespace(arch="roberta_large", layers=2, embed_dim=32, ffn_embed_dim=64, attention_heads=2,
                              max_positions=256, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                              final_bias=True)
    import esm
    return ProteinBertModel(args, esm.data.Alphabet.from_architecture("ESM-1b"))


def tiny_tape():
    from transformers import BertConfig, BertModel
    from smc_lib.tasks.protein.models import TAPE_VOCAB
    cfg = BertConfig(vocab_size=len(TAPE_VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=256)
    return BertModel(cfg, add_pooling_layer=False)


class TinyProtein:
    """The protein task on synthetic sequences (no data needed), with a model factory."""

    def __new__(cls, family: str):
        from smc_lib.tasks.protein import models
        from smc_lib.tasks.protein.data import Protein
        from smc_lib.tasks.protein.task import ProteinTask

        class Task(ProteinTask):
            def examples(self, split):
                rng = random.Random(0 if split == "train" else 1)
                rows = []
                for i in range(48 if split == "train" else 16):
                    label = i % 2
                    alphabet = "KRDE" if label else "LIVF"
                    rows.append(Protein(f"{split}{i}", "".join(rng.choice(alphabet + "AG") for _ in range(40)), label))
                return rows

            def build_model(self):
                torch.manual_seed(self.seed)
                tok = models.Tokenizer(models.family(self.model_name))
                if self.model_name == "esm1b-tiny":
                    return models.ESMClassifier(tiny_esm1b(), 2, tok)
                if self.model_name == "tape-tiny":
                    return models.TAPEClassifier(tiny_tape(), 2, tok)
                return super().build_model()

        return Task("hp-s2c2", {"esm2": "esm2-tiny", "esm1b": "esm1b-tiny", "tape": "tape-tiny"}[family],
                    DATA, layers=2, embed_dim=32, heads=2, max_length=32)


ENCODER = r"\.(?:self_attn\.(?:q|k|v|out)_proj|fc1|fc2|attention\.self\.(?:query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)\.weight$"


@pytest.mark.parametrize("family", ["esm2", "esm1b", "tape"])
@pytest.mark.parametrize("method", ["omp_before", "omp_after", "lth", "gmp"])
def test_tiny_models_under_every_timing_prune_only_attention_and_ffn(family, method, tmp_path):
    """before / after / iterative / during in seconds; under scope `encoder` only Q/K/V/O and FFN weights
    carry zeros (embeddings, norms, head and biases stay dense)."""
    import re

    from smc_lib.methods import get_method
    from smc_lib.methods.base import MethodContext
    from smc_lib.train import TrainConfig

    task = TinyProtein(family)
    cfg = TrainConfig(steps=6, batch_size=8, lr=1e-3, progress=False, device="cpu", eval_split="test")
    opts = {"frequency": 2} if method == "gmp" else {}
    m = get_method(method)(0.488, scope="encoder", **opts)
    fit, masks = m.run(task, task.build_model(), cfg, MethodContext(checkpoint_dir=tmp_path))
    assert masks.sparsity() == pytest.approx(0.488, abs=2e-3)
    assert masks.names() and all(re.search(ENCODER, n) for n in masks.names())
    for name, p in fit.model.named_parameters():
        if name not in masks.names():
            assert (p != 0).float().mean() > 0.9, name                     # nothing outside the scope pruned
    assert 0 <= fit.metrics["accuracy"] <= 100


def _as_published(model, args_key: str, args, prefix: str):
    """`model`'s weights in a fair-esm checkpoint's layout: names under `encoder.sentence_encoder.` (the LM
    head under `encoder.`), the training arguments as an `argparse.Namespace`, the contact regression apart."""
    state = {(f"encoder.{k}" if k.startswith("lm_head") else f"{prefix}{k}"): v
             for k, v in model.state_dict().items() if not k.startswith("contact_head.regression")}
    regression = {k: v for k, v in model.state_dict().items() if k.startswith("contact_head.regression")}
    return {"model": state, args_key: args}, {"model": regression}


@pytest.mark.parametrize("kind", ["esm2", "esm1b"])
def test_a_local_fair_esm_checkpoint_loads_through_fair_esms_loader(kind, tmp_path):
    """`build(path.pt)` goes through `esm.pretrained.load_model_and_alphabet_local`, as the paper's ESM-1b
    would. fair-esm keeps the training arguments as an `argparse.Namespace`, which torch's weights-only
    `torch.load` refused until `esm_checkpoints` allowed that one class."""
    import argparse

    from esm.model.esm2 import ESM2
    from smc_lib.tasks.protein import models

    torch.manual_seed(0)
    if kind == "esm2":
        source = ESM2(num_layers=2, embed_dim=32, attention_heads=4, alphabet="ESM-1b", token_dropout=True)
        args = argparse.Namespace(encoder_layers=2, encoder_embed_dim=32, encoder_attention_heads=4,
                                  token_dropout=True)
        data, regression = _as_published(source, "cfg", {"model": args}, "encoder.sentence_encoder.")
    else:
        source = tiny_esm1b()
        args = argparse.Namespace(arch="roberta_large", encoder_layers=2, encoder_embed_dim=32,
                                  encoder_ffn_embed_dim=64, encoder_attention_heads=2, max_positions=256,
                                  dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, final_bias=True)
        data, regression = _as_published(source, "args", args, "encoder.sentence_encoder.")
    path = tmp_path / f"{kind}_t2_tiny.pt"
    torch.save(data, path)
    torch.save(regression, tmp_path / f"{kind}_t2_tiny-contact-regression.pt")

    model, prov = models.build(str(path), classes=2)
    assert prov["path"] == str(path) and len(prov["sha256"]) == 64
    loaded, want = model.backbone.state_dict(), source.state_dict()
    assert len(loaded) > 20 and set(loaded) <= set(want)      # the classifier drops the LM and contact heads
    mask = model.tok.index["<mask>"]
    for k, v in loaded.items():
        expected = want[k].clone()
        if k == "embed_tokens.weight" and kind == "esm1b":       # fair-esm zeroes ESM-1b's <mask> row
            expected[mask] = 0
        assert torch.equal(v, expected), k
    model.eval()
    with torch.no_grad():
        assert model(model.tok(["MKTAYIAKQR", "GG"])).shape == (2, 2)


def test_a_local_tape_folder_loads_through_from_pretrained_without_the_unused_pooler(tmp_path):
    """`tape:<folder>` loads TAPE's BERT with `from_pretrained`: its own weights, and no pooler (the head reads
    the mean residue representation, so a pooler would be dead weight in scope `all`'s denominator)."""
    from transformers import BertConfig, BertModel
    from smc_lib.tasks.protein import models

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(models.TAPE_VOCAB), hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=256)
    source = BertModel(cfg)                                    # TAPE's published BERT carries a pooler
    source.save_pretrained(tmp_path)
    model, prov = models.build(f"tape:{tmp_path}", classes=2)
    assert prov == {"path": str(tmp_path)}
    loaded = model.bert.state_dict()
    assert not any(k.startswith("pooler") for k in loaded)
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in loaded.items())
    model.eval()
    with torch.no_grad():
        assert model(model.tok(["MKTAYIAKQR", "GG"])).shape == (2, 2)
