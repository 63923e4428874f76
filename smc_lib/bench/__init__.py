"""Benchmarks: `smc bench NAME [options]` runs `smc_lib.bench.NAME.main(argv)`.

Each benchmark times ours against a baseline *in the same process* and ends with one JSON line of its
figures (ratios, not absolute times, are what it claims).
"""
BENCHES = {
    "prune": "global magnitude pruning of a RoBERTa-large-shaped model vs torch.nn.utils.prune",
    "step": "masked vs dense AdamW step of BertForMultipleChoice (packaged MiniLM)",
    "fisher": "oBERT block-Fisher inverse vs sequential Woodbury updates",
    "gts": "one GTS training epoch on MAWPS fold 0",
}
