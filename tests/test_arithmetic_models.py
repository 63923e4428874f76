"""GTS / Graph2Tree: the fast GRU and the batched decoder against references, decoding validity, tiny runs."""
from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from smc_lib.errors import SMCError
from smc_lib.tasks import get_task
from smc_lib.tasks.arithmetic.data import check_prefix
from benchmarks.gts_reference import packed_gru_like, reference_loss
from smc_lib.tasks.arithmetic.rnn import BiGRU, _GRUFunction
from smc_lib.tasks.arithmetic.tree import tree_links
from smc_lib.train import fit

from test_arithmetic_data import write_csv, row

TEMPLATES = [  # (question, equation)
    ("tom has number0 apples . he buys number1 more . how many apples does he have ?", "+ number0 number1"),
    ("tom had number0 apples . he ate number1 of them . how many are left ?", "- number0 number1"),
    ("each box holds number0 pens . how many pens are in number1 boxes ?", "* number0 number1"),
    ("number0 cookies are shared by number1 kids . how many does each kid get ?", "/ number0 number1"),
    ("ann has number0 cards , gets number1 and gives away number2 . how many now ?",
     "- + number0 number1 number2"),
    ("a shirt costs number0 dollars with a number1 percent discount . what is the price ?",
     "* number0 / - 100.0 number1 100.0"),
]


def tiny_problems(n: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        q, eq = rng.choice(TEMPLATES)
        k = q.count("number")
        nums = [float(rng.randint(2, 9)) for _ in range(k)]
        from smc_lib.tasks.arithmetic.data import evaluate_prefix
        ans = evaluate_prefix(eq.split(), nums)
        group = [i for i, w in enumerate(q.split()) if w in ("apples", "pens", "boxes", "cards")]
        out.append(row(q, " ".join(f"{x:g}" for x in nums), eq, repr(ans), str(group)))
    return out


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    fold = root / "arithmetic" / "mawps" / "cv_mawps" / "fold0"
    write_csv(fold / "train.csv", tiny_problems(48, 0))
    write_csv(fold / "dev.csv", tiny_problems(12, 1))
    return root


def tiny_task(data, model: str, dropout: float = 0.5, hidden: int = 16):
    return get_task("arithmetic")("mawps", model, data, fold=0, embedder="random", hidden=hidden,
                                  embedding_dim=hidden // 2, beam_size=3, max_len=12, dropout=dropout)


def test_tree_links():
    # "- + a b c": minus(plus(a, b), c) with ops ids < 4, leaves >= 4
    links = tree_links([1, 0, 4, 5, 6], n_ops=4)
    assert links["parent"] == [-1, 0, 1, 1, 0] and links["is_right"] == [0, 0, 0, 1, 1]
    assert links["depth"] == [0, 1, 2, 2, 1] and links["height"] == [2, 1, 0, 0, 0]
    assert links["left"][:2] == [1, 2] and links["right"][:2] == [4, 3]


def test_bigru_matches_torch_gru():
    torch.manual_seed(0)
    x = torch.randn(3, 7, 5, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([7, 4, 6])
    ours = BiGRU(5, 4, layers=2).double()
    ref = torch.nn.GRU(5, 4, 2, bidirectional=True, batch_first=True).double()
    with torch.no_grad():
        for i, directions in enumerate(ours.layers):
            for layer, suffix in zip(directions, ("", "_reverse")):
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(ref, f"{name}_l{i}{suffix}").copy_(getattr(layer, name))
    out, _ = ref(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=7)
    mine = torch.cat(ours(x, lengths), dim=-1)
    w = torch.randn_like(out)
    assert torch.allclose(out, mine, atol=1e-12)                  # padded positions are 0 in both
    (gx_ref,) = torch.autograd.grad((out * w).sum(), x)
    (gx,) = torch.autograd.grad((mine * w).sum(), x)
    assert torch.allclose(gx, gx_ref, atol=1e-12)
    layer = ours.layers[0][0]
    valid = torch.tensor([[True, True, True], [True, False, True], [True, False, False], [True, False, False]])
    for v in (None, valid):
        x = torch.randn(4, 3, 5, dtype=torch.double, requires_grad=True)
        assert torch.autograd.gradcheck(_GRUFunction.apply,
                                        (x, v, layer.weight_ih, layer.weight_hh, layer.bias_ih, layer.bias_hh))


@pytest.mark.parametrize("model_name", ["gts", "graph2tree"])
def test_linear_tape_gives_autograds_gradients(tiny_data, model_name, monkeypatch):
    """The decoder's deferred weight gradients (LinearTape) equal plain autograd's, parameter by parameter,
    and the skinny (W xᵀ)ᵀ forward equals F.linear."""
    from smc_lib.tasks.arithmetic import linear_tape, tree
    task = tiny_task(tiny_data, model_name, dropout=0.0)
    model = task.build_model().double().train()
    batch = next(iter(task.batches("train", 8, shuffle=True, seed=0)))
    batch = {k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in batch.items()}

    def grads():
        model.zero_grad(set_to_none=True)
        torch.manual_seed(0)                                   # the same dropout masks in both passes
        loss = model(batch)
        loss.backward(retain_graph=True)
        (2 * loss).backward()                                  # a retained graph's second backward: 3x in all
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    taped_loss, taped = grads()
    class NoTape:
        def __init__(self, modules): pass
        def __enter__(self): return self
        def __exit__(self, *exc): pass
    monkeypatch.setattr(tree, "LinearTape", NoTape)
    with linear_tape.plain_linear():                           # F.linear everywhere
        plain_loss, plain = grads()
    torch.testing.assert_close(taped_loss, plain_loss, rtol=1e-12, atol=1e-12)
    assert taped.keys() == plain.keys() and any(n.startswith("decoder.") for n in taped)
    for n in plain:
        torch.testing.assert_close(taped[n], plain[n], rtol=1e-10, atol=1e-12, msg=n)


def test_batched_loss_equals_sequential_reference(tiny_data):
    task = tiny_task(tiny_data, "gts")
    model = task.build_model().double().eval()
    gru = packed_gru_like(model).double()
    for batch in task.batches("train", 16, shuffle=True, seed=0):
        batch = {k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in batch.items()}
        torch.testing.assert_close(model(batch), reference_loss(model, gru, batch), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("model_name", ["gts", "graph2tree"])
def test_decoding_always_yields_a_valid_prefix(tiny_data, model_name):
    task = tiny_task(tiny_data, model_name)
    for seed in range(3):
        task.seed = seed
        model = task.build_model()
        for p, pred in zip(task.problems("dev"), task.predict(model, "dev")):
            check_prefix(pred, len(p.numbers))  # raises if invalid or uses a missing quantity


@pytest.mark.parametrize("model_name", ["gts", "graph2tree"])
def test_tiny_end_to_end(tiny_data, model_name):
    task = tiny_task(tiny_data, model_name, dropout=0.0, hidden=64)
    model = task.build_model()
    before = task.evaluate(model)["accuracy"]
    cfg = dataclasses.replace(task.default_train_config(), epochs=20, batch_size=8, lr=2e-3, progress=False,
                              device="cpu", schedule="constant")
    result = fit(task, model, cfg)
    assert result.metrics["accuracy"] >= max(75.0, before + 50.0), (before, result.history)
    names = dict(model.named_parameters())
    assert any(n.startswith("embedder.") for n in names) and any(n.startswith("decoder.") for n in names)


def test_task_rejects_bad_params(tiny_data):
    with pytest.raises(SMCError, match="unknown arithmetic model"):
        get_task("arithmetic")("mawps", "bert", tiny_data)
    with pytest.raises(SMCError, match="unknown arithmetic params"):
        get_task("arithmetic")("mawps", "gts", tiny_data, hiden=3)


def test_default_train_config_is_table4(tiny_data):
    gts = get_task("arithmetic")("mawps", "gts", tiny_data).default_train_config()
    g2t = get_task("arithmetic")("svamp", "graph2tree", tiny_data).default_train_config()
    assert (gts.lr, gts.param_groups[0]["lr"], gts.batch_size, gts.epochs) == (1e-3, 8e-6, 4, 50)
    assert (g2t.lr, g2t.param_groups[0]["lr"], g2t.batch_size) == (8e-4, 1e-5, 8)
    assert gts.optimizer == "adam" and gts.weight_decay == 1e-5


def test_build_model_is_fresh_each_time(tiny_data):
    task = tiny_task(tiny_data, "gts")
    a, b = task.build_model(), task.build_model()
    assert a.embedder is not b.embedder
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert p is not q and torch.equal(p, q), name  # same seed → same initial weights, separate tensors


@pytest.mark.parametrize("model_name", ["gts", "graph2tree"])
def test_batched_beam_search_equals_one_problem_at_a_time(tiny_data, model_name):
    task = tiny_task(tiny_data, model_name, dropout=0.0, hidden=32)
    model = task.build_model()
    fit(task, model, dataclasses.replace(task.default_train_config(), epochs=12, batch_size=8, lr=2e-3,
                                         progress=False, device="cpu", eval_every=None, schedule="constant"))
    model = model.double().eval()
    (batch,) = list(task.batches("dev", 12))
    batch = {k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in batch.items()}
    together = model.beam(batch, beam_size=4)
    alone = [h for b in range(len(together)) for h in model.beam({k: v[b:b + 1] for k, v in batch.items()}, 4)]
    assert [h.out for h in together] == [h.out for h in alone]
    np.testing.assert_allclose([h.score for h in together], [h.score for h in alone], rtol=1e-10)
    assert sum(len(h.out) > 1 for h in together) >= 6        # trees, so merges and sibling goals are exercised


def test_the_packaged_minilm_loads_as_gts_pretrained_word_level_encoder(capfd):
    """The CPU profile's arithmetic encoder: the packaged MiniLM's own weights (not a fresh init), one vector
    per word taken at its first sub-token, and no transformers load report on every run (it listed the
    checkpoint's unused pooler, which `add_pooling_layer=False` drops on purpose)."""
    from safetensors.torch import load_file
    from smc_lib.tasks.arithmetic.embed import build_embedder, build_featurizer, resolve_embedder

    words = [["tom", "has", "NUM", "unbelievably", "shiny", "apples"], ["how", "many", "?"]]
    featurizer = build_featurizer("minilm", words)
    embedder = build_embedder("minilm", featurizer)
    assert "LOAD REPORT" not in "".join(capfd.readouterr())

    saved = load_file(f"{resolve_embedder('minilm')}/model.safetensors")
    name = next(k for k in saved if k.endswith("embeddings.word_embeddings.weight"))
    assert torch.equal(embedder.model.embeddings.word_embeddings.weight, saved[name])

    batch = featurizer(words)
    tokens = featurizer.tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    first_pieces = [featurizer.tokenizer.tokenize(w)[0] for w in words[0]]
    assert len(featurizer.tokenizer.tokenize("unbelievably")) > 1           # a word of several sub-tokens
    assert [tokens[i] for i in batch["word_index"][0]] == first_pieces
    embedder.eval()
    with torch.no_grad():
        out = embedder(batch)
    assert out.shape == (2, 6, embedder.dim) and embedder.dim == 384
