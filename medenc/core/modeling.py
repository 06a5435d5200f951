"""Build sentence-transformers models: the real base model, or an MPNet with random weights from a config.

Random-weight models share the real tokenizer and the base model's module stack (Transformer, mean pooling,
normalize), so tests and GPU benchmarks exercise the same code path as the real model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from medenc.core.io import write_json
from medenc.core.paths import PROJECT_ROOT

# hidden, layers, heads, intermediate: "tiny" keeps unit tests to seconds on 2 cores; "base" is the shape of
# all-mpnet-base-v2, for benchmarks on machines where the real weights cannot travel.
SHAPES: dict[str, tuple[int, int, int, int]] = {"tiny": (32, 2, 2, 64), "base": (768, 12, 12, 3072)}
# Recipe `model:` values with random weights -> their shape.
RANDOM_SHAPES: dict[str, str] = {"tiny": "tiny", "random-base": "base"}
# The base model's tokenizer files alone (700 KB, byte-identical to the verified model's; a test checks):
# random-weight models need no 438 MB download, so they also run where the weights cannot travel.
TOKENIZER_ASSETS = PROJECT_ROOT / "bench_assets" / "tokenizer"


def load_base(device: str | None = None, max_seq_length: int | None = None):
    """The real, verified all-mpnet-base-v2 as a SentenceTransformer."""
    from sentence_transformers import SentenceTransformer

    from medenc.core.base_model import resolve_base_model

    model = SentenceTransformer(str(resolve_base_model()), device=device)
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def token_lengths(model, texts: Sequence[str]) -> list[int]:
    """Tokens per text as ``model`` (a SentenceTransformer) encodes it, special tokens included and cut at its
    ``max_seq_length``: the width a batch pads to, so batches sorted by it carry almost no padding."""
    ids = model.tokenizer(list(texts), truncation=True, max_length=model.max_seq_length)["input_ids"]
    return [len(x) for x in ids]


def build_random_model(
    shape: str = "tiny",
    max_seq_length: int = 128,
    seed: int = 0,
    device: str | None = None,
    tokenizer: str | Path | None = None,
):
    """An MPNet of the given shape with random weights, the real tokenizer, mean pooling and normalisation.

    ``tokenizer``: a folder of tokenizer files; default: ``TOKENIZER_ASSETS``, the base model's own.
    """
    import tempfile

    import torch
    from safetensors.torch import save_file
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import AutoTokenizer, MPNetConfig, MPNetModel

    hidden, layers, heads, intermediate = SHAPES[shape]
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer or TOKENIZER_ASSETS))
    config = MPNetConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=514,
        # The tiny model checks code paths, not generalisation: without dropout a step's loss depends on the
        # rows alone, so one process at batch 2b and two at batch b can be compared exactly.
        **({"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0} if shape == "tiny" else {}),
    )
    torch.manual_seed(seed)
    # Transformer loads from a folder: the random model and the real tokenizer are saved side by side first.
    with tempfile.TemporaryDirectory(prefix=f"mpnet-{shape}-") as tmp:
        # Written directly, not with save_pretrained: under torch.distributed that writes on rank 0 only, and
        # every process builds its own copy.
        config.save_pretrained(tmp)
        save_file(MPNetModel(config).state_dict(), str(Path(tmp) / "model.safetensors"))
        tokenizer.save_pretrained(tmp)
        transformer = Transformer(tmp, max_seq_length=max_seq_length)
    pooling = Pooling(hidden, pooling_mode="mean")
    return SentenceTransformer(modules=[transformer, pooling, Normalize()], device=device)


# Module classes by the names sentence-transformers 5.x resolves (6.x moved Normalize where 5.x cannot import
# it); 6.x maps each of these names to its own module, so either version loads a folder that spells them so.
ST5_MODULE_NAMES = {"Transformer", "Pooling", "Normalize", "Dense"}
# Pooling as readers before sentence-transformers 5.4 spell it, a flag per mode (Text Embeddings Inference
# before its support of ``pooling_mode`` refuses a config without them).
POOLING_FLAGS = {
    "cls": "pooling_mode_cls_token",
    "mean": "pooling_mode_mean_tokens",
    "max": "pooling_mode_max_tokens",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
}


def save_model(model, folder: Path | str) -> None:
    """``model.save(folder)``, plus what the release's other readers need (docs/release.md, "Who loads the
    release").

    sentence-transformers 6 writes ``max_seq_length`` into the tokenizer config only: Text Embeddings
    Inference reads it from ``sentence_bert_config.json`` and, without it, accepts ``max_position_embeddings``
    tokens, past MPNet's 512 positions and past what the model was evaluated at. Module types and pooling
    flags are written as sentence-transformers 5 and older Text Embeddings Inference read them. What
    sentence-transformers 6 computes from the folder does not change (tests/test_serving.py).
    """
    folder = Path(folder)
    model.save(str(folder))
    modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    for module in modules:
        name = module["type"].rsplit(".", 1)[-1]
        if module["type"].startswith("sentence_transformers.") and name in ST5_MODULE_NAMES:
            module["type"] = f"sentence_transformers.models.{name}"
    write_json(folder / "modules.json", modules)
    config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
    write_json(folder / "sentence_bert_config.json", {**config, "max_seq_length": model.max_seq_length})
    pooling_path = folder / "1_Pooling" / "config.json"
    if pooling_path.is_file():
        pooling = json.loads(pooling_path.read_text(encoding="utf-8"))
        mode = pooling.get("pooling_mode")
        modes = {mode} if isinstance(mode, str) else set(mode or ())
        flags = {flag: m in modes for m, flag in POOLING_FLAGS.items()}
        write_json(pooling_path, {**pooling, **flags})


def _sdpa_self_attention(
    self, hidden_states, attention_mask=None, position_bias=None, output_attentions=False, **kwargs
):
    """MPNetSelfAttention.forward through ``scaled_dot_product_attention``: the same math as the eager code
    (scores / sqrt(d) + relative position bias + padding mask, softmax, dropout), in one fused kernel."""
    import torch

    if output_attentions:  # the fused kernel returns no probabilities
        return self._eager_forward(hidden_states, attention_mask, position_bias, output_attentions, **kwargs)
    shape = (*hidden_states.shape[:-1], -1, self.attention_head_size)
    q = self.q(hidden_states).view(shape).transpose(1, 2)
    k = self.k(hidden_states).view(shape).transpose(1, 2)
    v = self.v(hidden_states).view(shape).transpose(1, 2)
    bias = position_bias
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            attention_mask = torch.zeros_like(attention_mask, dtype=q.dtype).masked_fill(
                ~attention_mask, torch.finfo(q.dtype).min
            )
        bias = attention_mask if bias is None else bias + attention_mask
    # SDPA wants the mask in the query's dtype (fp16/bf16 under autocast); gradients still reach the
    # relative position bias through it.
    c = torch.nn.functional.scaled_dot_product_attention(
        q,
        k,
        v,
        attn_mask=None if bias is None else bias.to(q.dtype),
        dropout_p=self.dropout.p if self.training else 0.0,
    )
    c = c.transpose(1, 2).reshape(*hidden_states.shape[:-1], self.all_head_size)
    return (self.o(c),)


def use_sdpa_attention(model) -> int:
    """Route every MPNet self-attention of ``model`` through torch SDPA; returns how many layers now do.

    transformers' MPNet implements eager attention only (``_supports_sdpa`` is False) because of its relative
    position bias, but SDPA takes that bias as an additive ``attn_mask``. Patched per instance, so other
    models and saved files are unchanged; idempotent.
    """
    import types

    from transformers.models.mpnet.modeling_mpnet import MPNetSelfAttention

    n = 0
    for module in model.modules():
        if isinstance(module, MPNetSelfAttention):
            if not hasattr(module, "_eager_forward"):
                module._eager_forward = module.forward
                module.forward = types.MethodType(_sdpa_self_attention, module)
            n += 1
    return n


def _chunk_features(features: dict, rows, cut: int, width: int) -> dict:
    """The rows ``rows`` of a batch's features, their token columns cut to ``cut`` (the rest is padding)."""
    import torch

    out = {}
    batch = len(features["attention_mask"])
    for key, value in features.items():
        if isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == batch:
            value = value[rows]
            if value.dim() == 2 and value.shape[1] == width:
                value = value[:, :cut]
        out[key] = value
    return out


def _length_chunked_forward(self, features: dict, **kwargs) -> dict:
    """The transformer module's forward over a batch cut into chunks of ``self._chunk_rows`` rows of similar
    length, each padded only to its own longest row; token embeddings come back in the batch's order and
    width (zeros at the padding, which the attention mask already hides from the pooling).

    Why: a training batch is padded to its longest text, so on a CPU most of its arithmetic is padding
    (phase 2 of the CPU recipe: 1.7x the tokens of chunks of 16). Masked padding changes no real token's
    output, so every embedding and gradient is the whole batch's, up to rounding; dropout draws other masks.
    """
    import torch

    mask = features.get("attention_mask")
    rows = self._chunk_rows
    plain = (
        mask is None
        or mask.dim() != 2
        or mask.shape[0] <= rows
        or features.get("modality", "text") != "text"
        or bool((mask[:, 0] == 0).any())  # left padding: the cut below keeps the first columns
        or getattr(self.model.config, "output_hidden_states", False)
    )
    if plain:
        return self._whole_forward(features, **kwargs)
    lengths = mask.sum(dim=1)
    order = torch.argsort(lengths, descending=True, stable=True)
    width = mask.shape[1]
    parts = []
    for start in range(0, len(order), rows):
        chunk = order[start : start + rows]
        cut = int(lengths[chunk].max())
        out = self._whole_forward(_chunk_features(features, chunk, cut, width), **kwargs)
        parts.append(torch.nn.functional.pad(out[self.module_output_name], (0, 0, 0, width - cut)))
    features[self.module_output_name] = torch.cat(parts)[torch.argsort(order)]
    return features


def use_length_chunks(model, rows: int | None) -> int:
    """Run ``model``'s transformer modules over length-sorted chunks of ``rows`` rows each (see
    ``_length_chunked_forward``), or over whole batches again with ``None``; returns how many modules it set.
    Patched per instance, so other models and saved files are unchanged."""
    import types

    n = 0
    for module in model.modules():
        if hasattr(module, "module_output_name") and hasattr(module, "auto_model"):
            if rows is None:
                if hasattr(module, "_whole_forward"):
                    whole = module.__dict__.pop("_whole_forward")
                    del module.forward  # the class's forward again, or the instance's own if it had one
                    if getattr(whole, "__func__", None) is not type(module).forward:
                        module.forward = whole
            elif not hasattr(module, "_whole_forward"):
                module._whole_forward = module.forward
                module.forward = types.MethodType(_length_chunked_forward, module)
            module._chunk_rows = rows
            n += 1
    return n
