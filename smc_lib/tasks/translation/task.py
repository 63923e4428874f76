"""The "translation" task: many-to-many mBART fine-tuning through the English pivot, BLEU (section 3.4).

Model: transformers' `MBartForConditionalGeneration` with mBART's language codes. As in mBART's fine-tuning
recipe a source is `tokens </s> <src_code>` and the decoder starts with the target's language code:
labels `tokens </s> <tgt_code>` shifted right give decoder inputs `<tgt_code> tokens </s>`, and generation
starts from `decoder_start_token_id = <tgt_code>`.

- `mbart-tiny` (CPU profile): no pretrained multilingual model can be had offline, so a small random-init
  mBART over one sentencepiece model fit on all eleven languages' training text (identity normalisation and
  byte fallback: decoding gives back exactly what was encoded; one shared vocabulary, so 2-to-2 against
  10-to-10 measures prunability, not vocabulary coverage). Its BLEU checks the machinery, not the paper.
- a hub name or local folder (paper profile: `facebook/mbart-large-cc25`): its own tokenizer and weights.

Evaluation: the first `max_eval` sentences of every one of the 20 directions of the test split, greedy
(`beam_size` 1) or beam search, detokenized, scored by sacrebleu per direction (`data.bleu_tokenizer`);
the primary metric is their mean. The BLEU signatures go into the run record (`record_info`).
"""
from __future__ import annotations

import functools
import io
import random
from functools import cached_property
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F

from ...errors import SMCError
from ...train import TrainConfig
from .. import register_task
from ..base import Task
from ..hub import provenance
from .data import DATASETS, EVAL_LANGS, LANGS, SETS, Pair, bleu_tokenizer, directions, load_direction, monolingual

SPECIALS = {"pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3}


class SharedVocab:
    """One sentencepiece model over every language's training text, plus mBART's eleven language codes."""

    def __init__(self, sentences: list[str], size: int = 8000):
        import sentencepiece as spm

        buf = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(sentences), model_writer=buf, vocab_size=size, model_type="unigram",
                character_coverage=0.9995, byte_fallback=True, normalization_rule_name="identity",
                remove_extra_whitespaces=False, num_threads=1, minloglevel=2, hard_vocab_limit=False, **SPECIALS)
        except RuntimeError as e:
            raise SMCError(f"sentencepiece cannot fit a {size}-piece vocabulary to the training text ({str(e)[-90:]}); "
                           "raise the task's vocab_size") from None
        self.sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
        self.pieces = self.sp.get_piece_size()
        self.codes = {lang: self.pieces + i for i, lang in enumerate(LANGS)}
        self.size = self.pieces + len(self.codes)
        self.pad, self.eos = SPECIALS["pad_id"], SPECIALS["eos_id"]

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def decode(self, ids: list[int]) -> str:
        return self.sp.decode([i for i in ids if 3 < i < self.pieces or i == SPECIALS["unk_id"]])

    def lang_id(self, lang: str) -> int:
        return self.codes[lang]


@functools.lru_cache(maxsize=4)
def shared_vocab(data_dir: str, source: str, size: int) -> SharedVocab:
    """The shared vocabulary of a data folder (fit once per process: a sweep builds a task per run)."""
    return SharedVocab(monolingual(data_dir, source, EVAL_LANGS), size)


class HubVocab:
    """mBART's own tokenizer (`facebook/mbart-large-cc25` or a local folder)."""

    def __init__(self, name: str, revision: str | None = None):
        from transformers import AutoTokenizer

        try:
            self.tok = AutoTokenizer.from_pretrained(name, revision=revision)
        except OSError as e:
            raise SMCError(f"cannot load the tokenizer of {name!r} ({type(e).__name__}); give mbart-tiny, a local "
                           "folder, or a hub name on a host with a network") from None
        self.size, self.pad, self.eos = len(self.tok), self.tok.pad_token_id, self.tok.eos_token_id

    def encode(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=True)

    def lang_id(self, lang: str) -> int:
        return self.tok.convert_tokens_to_ids(LANGS[lang][1])


@register_task("translation")
class TranslationTask(Task):
    """Params: source (flores200 | opus100), vocab_size (mbart-tiny's sentencepiece), d_model, layers, heads,
    ffn_dim, dropout, attention_dropout, label_smoothing, max_len (tokens per side), max_train (pairs per
    direction), max_eval (sentences per evaluation direction), beam_size, eval_batch_size, revision (the hub
    commit a named model is pinned to)."""

    name = "translation"
    version = 2                       # 2: chrF beside BLEU; mbart-tiny forces its own </s> at the length limit
    datasets = DATASETS
    default_scope = "all"
    primary_metric = "bleu"

    def __init__(self, dataset: str, model: str = "mbart-tiny", data_dir: Path | str = "data", fold: int | None = None,
                 seed: int = 0, source: str = "flores200", vocab_size: int = 8000, d_model: int = 128,
                 layers: int = 2, heads: int = 4, ffn_dim: int = 256, dropout: float = 0.1,
                 attention_dropout: float = 0.1, label_smoothing: float = 0.2, max_len: int = 96,
                 max_train: int | None = None, max_eval: int | None = 50, beam_size: int = 1,
                 eval_batch_size: int = 32, revision: str | None = None, **params):
        if params:
            raise SMCError(f"unknown translation params {sorted(params)}; see `help(TranslationTask)`")
        super().__init__(dataset, model, data_dir, fold, seed)
        self.source, self.vocab_size = source, int(vocab_size)
        self.arch = dict(d_model=d_model, layers=layers, heads=heads, ffn_dim=ffn_dim, dropout=dropout,
                         attention_dropout=attention_dropout)
        self.label_smoothing, self.max_len, self.beam_size = float(label_smoothing), int(max_len), int(beam_size)
        self.limits = {"train": max_train, "test": max_eval}
        self.eval_batch_size = int(eval_batch_size)
        self.signatures: dict[str, str] = {}
        self.revision, self.loaded = revision, {}

    # -- data
    def pairs(self, split: str) -> list[Pair]:
        """Training: both directions of every language of the dataset's set; test: all 20 directions."""
        split = "test" if split in ("dev", "test") else split
        langs = SETS[self.dataset] if split == "train" else EVAL_LANGS
        limit = self.limits[split]
        out = []
        for src, tgt in directions(langs):
            rows = load_direction(self.data_dir, self.source, split, src, tgt)
            out += rows[:limit] if limit else rows
        return out

    def data_files(self) -> list[Path]:
        folder = self.data_dir / "translation" / self.source
        return sorted(p for p in folder.rglob("*") if p.is_file())

    @cached_property
    def vocab(self):
        if self.model_name == "mbart-tiny":
            return shared_vocab(str(self.data_dir.resolve()), self.source, self.vocab_size)
        return HubVocab(self.model_name, self.revision)

    def _ids(self, text: str) -> list[int]:
        return self.vocab.encode(text)[: self.max_len - 2]

    def collate(self, rows: list[Pair]) -> dict:
        v = self.vocab
        src = [self._ids(p.src) + [v.eos, v.lang_id(p.src_lang)] for p in rows]
        labels = [self._ids(p.tgt) + [v.eos, v.lang_id(p.tgt_lang)] for p in rows]
        return {"input_ids": _pad(src, v.pad), "labels": _pad(labels, -100),
                "decoder_input_ids": _pad([[lab[-1]] + lab[:-1] for lab in labels], v.pad)}

    def batches(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0) -> Iterable[dict]:
        rows = self.pairs(split)
        if shuffle:
            random.Random(seed).shuffle(rows)
        for i in range(0, len(rows), batch_size):
            yield self.collate(rows[i: i + batch_size])

    def num_batches(self, split: str, batch_size: int) -> int:
        return -(-len(self.pairs(split)) // batch_size)

    def eval_size(self, split: str) -> int:
        return len(self.pairs(split))

    # -- model
    def build_model(self) -> torch.nn.Module:
        from transformers import MBartConfig, MBartForConditionalGeneration

        torch.manual_seed(self.seed)
        if self.model_name != "mbart-tiny":
            try:
                model = MBartForConditionalGeneration.from_pretrained(
                    self.model_name, dropout=self.arch["dropout"], attention_dropout=self.arch["attention_dropout"],
                    revision=self.revision)
                self.loaded = provenance(self.model_name, model, self.revision)
                return model
            except OSError as e:
                raise SMCError(f"cannot load {self.model_name!r} ({type(e).__name__}); give mbart-tiny, a local "
                               "folder, or a hub name on a host with a network") from None
        a, v = self.arch, self.vocab
        cfg = MBartConfig(vocab_size=v.size, d_model=a["d_model"], encoder_layers=a["layers"],
                          decoder_layers=a["layers"], encoder_attention_heads=a["heads"],
                          decoder_attention_heads=a["heads"], encoder_ffn_dim=a["ffn_dim"], decoder_ffn_dim=a["ffn_dim"],
                          dropout=a["dropout"], attention_dropout=a["attention_dropout"], max_position_embeddings=256,
                          pad_token_id=v.pad, eos_token_id=v.eos, bos_token_id=SPECIALS["bos_id"],
                          decoder_start_token_id=v.eos, forced_eos_token_id=v.eos, scale_embedding=True)
        return MBartForConditionalGeneration(cfg)

    def logits(self, model, batch: dict) -> torch.Tensor:
        return model(input_ids=batch["input_ids"], attention_mask=batch["input_ids"] != self.vocab.pad,
                     decoder_input_ids=batch["decoder_input_ids"]).logits

    def loss(self, model, batch: dict) -> torch.Tensor:
        return self.loss_and_logits(model, batch)[0]

    def loss_and_logits(self, model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.logits(model, batch)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1), ignore_index=-100,
                               label_smoothing=self.label_smoothing)
        return loss, logits

    # -- metric
    @torch.no_grad()
    def translate(self, model, rows: list[Pair]) -> list[str]:
        """Detokenized translations of `rows` (all of one target language), starting from its language code."""
        v, device = self.vocab, next(model.parameters()).device
        out: list[str] = []
        for i in range(0, len(rows), self.eval_batch_size):
            part = rows[i: i + self.eval_batch_size]
            ids = _pad([self._ids(p.src) + [v.eos, v.lang_id(p.src_lang)] for p in part], v.pad).to(device)
            gen = model.generate(input_ids=ids, attention_mask=ids != v.pad, num_beams=self.beam_size,
                                 decoder_start_token_id=v.lang_id(part[0].tgt_lang), max_new_tokens=self.max_len,
                                 eos_token_id=v.eos, pad_token_id=v.pad, do_sample=False)
            out += [v.decode(g[1:].tolist()) for g in gen]
        return out

    def evaluate(self, model, split: str = "test") -> dict[str, float]:
        """Mean BLEU over the 20 directions (the paper's metric) and each direction's, plus chrF (Popović 2015):
        character n-grams still rank a model whose BLEU is ~0, as the tiny CPU model's is."""
        from sacrebleu.metrics import BLEU, CHRF

        was_training = model.training
        model.eval()
        bleus, chrfs = {}, {}
        rows = self.pairs(split)
        chrf = CHRF()
        for src, tgt in directions(EVAL_LANGS):
            part = [p for p in rows if (p.src_lang, p.tgt_lang) == (src, tgt)]
            hyps, refs = self.translate(model, part), [[p.tgt for p in part]]
            bleu = BLEU(tokenize=bleu_tokenizer(tgt))
            bleus[f"bleu_{src}-{tgt}"] = bleu.corpus_score(hyps, refs).score
            chrfs[f"chrf_{src}-{tgt}"] = chrf.corpus_score(hyps, refs).score
            self.signatures[f"{src}-{tgt}"] = str(bleu.get_signature())
        self.signatures["chrf"] = str(chrf.get_signature())
        model.train(was_training)
        return {"bleu": sum(bleus.values()) / len(bleus), **bleus, "chrf": sum(chrfs.values()) / len(chrfs), **chrfs}

    def record_info(self) -> dict:
        return {"bleu_signatures": dict(self.signatures), "source": self.source,
                "model": self.loaded or {"init": self.model_name},
                "evaluation": f"first {self.limits['test'] or 'all'} test sentences of each of the 20 directions, "
                              + ("greedy" if self.beam_size == 1 else f"beam {self.beam_size}")}

    def default_train_config(self) -> TrainConfig:
        """Table 6 (mBART): Adam β (0.9, 0.98), ε 1e-6, LR 3e-5, 2 500 warm-up of 40 000 updates; §4.4's text says
        1e-6: Table 6 is followed. The random-init `mbart-tiny` trains at LR 1e-3."""
        if self.model_name == "mbart-tiny":
            return TrainConfig(epochs=10, batch_size=32, optimizer="adam", lr=1e-3, betas=(0.9, 0.98), eps=1e-6,
                               schedule="linear", warmup_steps=0.05, eval_split="test")
        return TrainConfig(steps=40000, batch_size=16, optimizer="adam", lr=3e-5, betas=(0.9, 0.98), eps=1e-6,
                           schedule="linear", warmup_steps=2500, eval_split="test")


def _pad(seqs: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (width - len(s)) for s in seqs])
