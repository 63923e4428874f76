"""Which parameters are prunable: the scope policies of SMC-Bench (Liu, Chen et al., ICLR 2023).

`all` is the paper's default (every weight matrix, embeddings and classifier heads included); `encoder`
restricts pruning to the attention Q/K/V/O and FFN matrices of the transformer layers (the paper's ESM
setting, and the scope of oBERT, Kurtic et al. 2022); `custom` takes include / exclude regexes.
Biases and normalisation weights are never pruned. The same name rules also classify a parameter into
a layer index and a kind (embedding / attention / ffn / head / other) for `MaskSet.layerwise()`.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

import torch
from torch import nn

from .errors import SMCError, unknown

SCOPES = ("all", "encoder", "custom")

# A transformer layer: BERT/RoBERTa `encoder.layer.3.`, ESM/mBART `layers.3.`, GPT-style `h.3.` / `blocks.3.`.
_LAYER = re.compile(r"(?:^|\.)(?:layer|layers|h|block|blocks)\.(\d+)\.")
_ATTENTION = re.compile(  # bare query/key/value only count inside an `attention` module (BERT): GTS's gated
    r"(?:^|\.)(?:q_proj|k_proj|v_proj|out_proj|attention\.output\.dense|attn\.\w+)\.weight$")  # units are `value`
_FFN = re.compile(r"(?:^|\.)(?:intermediate\.dense|(?<!attention\.)output\.dense|fc1|fc2|mlp\.\w+)\.weight$")
# a module named for an embedding (word_embeddings, embed_tokens, op_embedding, embed); not a container such as
# GTS's `embedder`, which holds a whole pretrained encoder
_EMBEDDING = re.compile(r"(?:^|\.)(?:\w*embedding\w*|embed|embed_\w+)(?:\.|$)|(?:^|\.)(?:shared|wte|wpe)\.weight$",
                        re.IGNORECASE)
_HEAD = re.compile(r"(?:^|\.)(?:\w*head|\w*heads|classifier|pooler|qa_outputs|score|regression)(?:\.|$)")

#: `encoder` policy: a layer-indexed attention or FFN weight matrix (BERT, RoBERTa, ESM, mBART naming).
ENCODER_PATTERNS: tuple[str, ...] = (
    r"(?:^|\.)(?:layer|layers)\.\d+\.(?:.*\.)?(?:query|key|value|q_proj|k_proj|v_proj|out_proj|"
    r"attention\.output\.dense)\.weight$",
    r"(?:^|\.)(?:layer|layers)\.\d+\.(?:.*\.)?(?:intermediate\.dense|(?<!attention\.)output\.dense|fc1|fc2)\.weight$",
)
_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase, getattr(nn, "RMSNorm", nn.LayerNorm))


def layer_index(name: str) -> int:
    """The transformer-layer index parsed from a parameter name, or -1 (embeddings, heads, toy nets)."""
    m = _LAYER.search(name)
    return int(m.group(1)) if m else -1


def param_kind(name: str) -> str:
    """Classify a parameter by name: embedding, attention, ffn, head or other."""
    if _EMBEDDING.search(name):
        return "embedding"
    if _HEAD.search(name):
        return "head"
    if _ATTENTION.search(name) or "attention" in name or "self_attn" in name or "encoder_attn" in name:
        return "attention"
    if _FFN.search(name) or re.search(r"(?:^|\.)fc\d*\.|intermediate|ffn|mlp", name):
        return "ffn"
    return "other"


def _norm_param_names(model: nn.Module) -> set[str]:
    names = set()
    for mod_name, mod in model.named_modules():
        if isinstance(mod, _NORMS) or "norm" in type(mod).__name__.lower():
            names.update(f"{mod_name}.{p}" if mod_name else p for p, _ in mod.named_parameters(recurse=False))
    return names


def _compile(patterns: Iterable[str] | None, what: str) -> list[re.Pattern]:
    if patterns is None:
        return []
    if isinstance(patterns, str):
        patterns = [patterns]
    out = []
    for p in patterns:
        try:
            out.append(re.compile(p))
        except re.error as e:
            raise SMCError(f"bad {what} regex {p!r} ({e}); give a Python regular expression") from None
    return out


def prunable(model: nn.Module, policy: str = "all", include: Sequence[str] | str | None = None,
             exclude: Sequence[str] | str | None = None,
             encoder_patterns: Sequence[str] | None = None) -> dict[str, nn.Parameter]:
    """Ordered `{qualified_name: parameter}` of the weights that `policy` allows to prune.

    Candidates are the weight matrices (`ndim >= 2`) that are not normalisation weights; biases and norms
    are never prunable. `all` keeps every candidate; `encoder` keeps those matching `encoder_patterns`
    (default `ENCODER_PATTERNS`; tasks override through `task.encoder_patterns`); `custom` keeps the
    candidates matching any `include` regex (default: all candidates). `exclude` regexes then drop names
    under every policy. Shared (tied) parameters appear once, under their first name.
    """
    if policy not in SCOPES:
        raise unknown("scope", policy, list(SCOPES))
    if policy != "custom" and include:
        raise SMCError(f"`include` regexes only apply to scope 'custom', not {policy!r}; use scope='custom'")
    norms = _norm_param_names(model)
    candidates = {n: p for n, p in model.named_parameters() if p.ndim >= 2 and n not in norms}
    if policy == "encoder":
        keep = _compile(encoder_patterns or ENCODER_PATTERNS, "encoder")
    else:
        keep = _compile(include, "include")
    drop = _compile(exclude, "exclude")
    chosen = {n: p for n, p in candidates.items()
              if (not keep or any(r.search(n) for r in keep)) and not any(r.search(n) for r in drop)}
    if not chosen:
        detail = f"include={list(include or [])} exclude={list(exclude or [])}" if policy == "custom" else ""
        raise SMCError(f"scope {policy!r} {detail}matches no weight matrix of {type(model).__name__} "
                       f"({len(candidates)} candidates, e.g. {', '.join(list(candidates)[:3])}); "
                       "choose another scope or fix the regexes")
    return chosen


def scope_summary(params: dict[str, torch.Tensor]) -> dict[str, int]:
    """Number of weights per kind in a scope (for logs and reports)."""
    out: dict[str, int] = {}
    for n, p in params.items():
        out[param_kind(n)] = out.get(param_kind(n), 0) + p.numel()
    return out
