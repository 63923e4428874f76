"""Benchmarks: `smc bench NAME [options]` runs `benchmarks/NAME.py`'s `main(argv)`; they live beside the library,
not in it, and run from a checkout of the repository (`python -m benchmarks.NAME` works too).

Each benchmark times ours against a baseline *in the same process* and ends with one JSON line of its
figures (ratios, not absolute times, are what it claims).
"""
BENCHES = {
    "prune": "global magnitude pruning of a RoBERTa-large-shaped model vs torch.nn.utils.prune",
    "step": "masked vs dense AdamW step of BertForMultipleChoice (packaged MiniLM)",
    "fisher": "oBERT block-Fisher inverse vs sequential Woodbury updates",
    "gts": "one GTS training epoch on MAWPS fold 0",
}
