"""Translation: parallel readers, BLEU through the project's own path per direction, and a tiny mBART under
every timing whose decoder starts with the target's language code."""
from __future__ import annotations

import random
import unicodedata
from pathlib import Path

import pytest
import torch

from smc_lib.errors import SMCError
from smc_lib.tasks.translation import data as D

DATA = Path(__file__).resolve().parents[1] / "data"
needs_data = pytest.mark.skipif(not (DATA / "translation").is_dir(), reason="data/ not pulled (make data)")
TINY = dict(vocab_size=4000, d_model=32, layers=1, heads=2, ffn_dim=64, max_train=8, max_eval=2, max_len=32)


@pytest.fixture(scope="module")
def task():
    from smc_lib.tasks.translation.task import TranslationTask
    return TranslationTask("2-to-2", "mbart-tiny", DATA, **TINY)


@needs_data
@pytest.mark.parametrize("src,tgt", D.directions(D.EVAL_LANGS))
def test_bleu_through_the_projects_path(task, src, tgt):
    """sentencepiece encode → decode, then sacrebleu with the target's tokenizer: the round-tripped references
    score 100 against themselves; a shuffled hypothesis scores below 10 (30 for char-tokenized targets)."""
    from sacrebleu.metrics import BLEU

    refs = [p.tgt for p in D.load_direction(DATA, "flores200", "test", src, tgt)[:200]]
    hyps = [task.vocab.decode(task.vocab.encode(r)) for r in refs]
    bleu = BLEU(tokenize=D.bleu_tokenizer(tgt))
    assert bleu.corpus_score(hyps, [refs]).score == pytest.approx(100.0)
    shuffled = hyps[:]
    random.Random(0).shuffle(shuffled)
    ceiling = 30 if D.bleu_tokenizer(tgt) == "char" else 10
    assert bleu.corpus_score(shuffled, [refs]).score < ceiling


def test_misaligned_and_empty_lines_are_named(tmp_path):
    a, b = tmp_path / "x.en", tmp_path / "x.fr"
    a.write_text("one\ntwo\nthree\n")
    b.write_text("un\ndeux\n")
    with pytest.raises(SMCError, match=r"x\.en has 3 lines but .*x\.fr has 2"):
        D.read_parallel(a, b)
    b.write_text("un\n\ntrois\n")
    with pytest.raises(SMCError, match=r"x\.fr:2: empty line"):
        D.read_parallel(a, b)


@needs_data
def test_language_sets_and_directions(task):
    assert len(D.directions(D.SETS["10-to-10"])) == 20
    train = task.pairs("train")
    assert {(p.src_lang, p.tgt_lang) for p in train} == {("fr", "en"), ("en", "fr"), ("cs", "en"), ("en", "cs")}
    assert len({(p.src_lang, p.tgt_lang) for p in task.pairs("test")}) == 20      # always all 20 directions


@needs_data
def test_decoder_starts_with_the_target_language_code(task):
    torch.manual_seed(0)
    model = task.build_model()
    rows = [p for p in task.pairs("test") if p.tgt_lang == "fr"][:2]
    batch = task.collate(rows)
    assert (batch["decoder_input_ids"][:, 0] == task.vocab.lang_id("fr")).all()
    assert all(row[row != -100][-1] == task.vocab.lang_id("fr") for row in batch["labels"])
    v = task.vocab
    ids = torch.tensor([task._ids(rows[0].src) + [v.eos, v.lang_id("en")]])
    gen = model.generate(input_ids=ids, decoder_start_token_id=v.lang_id("fr"), max_new_tokens=4, num_beams=1,
                         eos_token_id=v.eos, pad_token_id=v.pad)
    assert gen[0, 0] == v.lang_id("fr")
    # at the length limit generation forces the vocabulary's own </s>, not MBartConfig's default id 2 (<s> here)
    assert model.config.forced_eos_token_id == v.eos and gen[0, -1] == v.eos


@needs_data
@pytest.mark.parametrize("method", ["omp_before", "omp_after", "lth", "gmp"])
def test_tiny_mbart_under_every_timing(task, method, tmp_path):
    from smc_lib.methods import get_method
    from smc_lib.methods.base import MethodContext
    from smc_lib.train import TrainConfig

    cfg = TrainConfig(steps=3, batch_size=8, optimizer="adam", lr=1e-3, progress=False, device="cpu",
                      eval_split="test")
    opts = {"frequency": 1} if method == "gmp" else {}
    m = get_method(method)(0.36, scope="all", **opts)
    fit, masks = m.run(task, task.build_model(), cfg, MethodContext(checkpoint_dir=tmp_path))
    assert masks.sparsity() == pytest.approx(0.36, abs=2e-3)
    assert "bleu" in fit.metrics and len([k for k in fit.metrics if k.startswith("bleu_")]) == 20
    assert len([k for k in fit.metrics if k.startswith("chrf_")]) == 20
    assert fit.metrics["chrf"] == pytest.approx(sum(v for k, v in fit.metrics.items() if k.startswith("chrf_")) / 20)
    assert 0 <= fit.metrics["chrf"] <= 100 and "nc:6|nw:0" in task.signatures["chrf"]


@needs_data
def test_a_local_mbart_folder_runs_through_the_paper_profiles_path(task, tmp_path):
    """The paper profile's path (`facebook/mbart-large-cc25`) on a folder laid out like it: `AutoTokenizer` and
    `from_pretrained` load it, source ends `</s> src_code` and the decoder starts from the target's code as in
    fairseq's mBART, detokenization gives the text back, and a short run scores all 20 directions."""
    from transformers import MBartConfig, MBartForConditionalGeneration, MBartTokenizer
    from smc_lib.tasks.translation.task import TranslationTask
    from smc_lib.train import TrainConfig, fit

    sp = task.vocab.sp                                    # any unigram model will do for the tokenizer's pieces
    tok = MBartTokenizer(vocab=[(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())])
    tok.save_pretrained(tmp_path)
    torch.manual_seed(0)
    MBartForConditionalGeneration(MBartConfig(
        vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id,
        decoder_start_token_id=tok.eos_token_id, scale_embedding=True)).save_pretrained(tmp_path)

    hub = TranslationTask("2-to-2", str(tmp_path), DATA, max_train=8, max_eval=2, max_len=32)
    model = hub.build_model()
    assert set(hub.record_info()["model"]["sha256"]) == {"model.safetensors"}
    fr = tok.convert_tokens_to_ids("fr_XX")
    assert hub.vocab.lang_id("fr") == fr and hub.vocab.lang_id("en") == tok.convert_tokens_to_ids("en_XX")
    rows = [p for p in hub.pairs("test") if (p.src_lang, p.tgt_lang) == ("en", "fr")]
    batch = hub.collate(rows)
    assert batch["input_ids"][0, -2:].tolist() == [tok.eos_token_id, tok.convert_tokens_to_ids("en_XX")]
    assert (batch["decoder_input_ids"][:, 0] == fr).all()
    nfkc = lambda t: unicodedata.normalize("NFKC", t)      # mBART's tokenizer normalizes: no-break space → space
    assert hub.vocab.decode(hub.vocab.encode(rows[0].tgt)) == nfkc(rows[0].tgt)
    cfg = TrainConfig(steps=2, batch_size=8, optimizer="adam", lr=1e-3, progress=False, device="cpu",
                      eval_split="test")
    metrics = fit(hub, model, cfg).metrics
    assert len([k for k in metrics if k.startswith("bleu_")]) == 20 and 0 <= metrics["bleu"] <= 100
    ids = batch["input_ids"][:1]
    gen = model.generate(input_ids=ids, decoder_start_token_id=fr, max_new_tokens=3, num_beams=1,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    assert gen[0, 0] == fr
