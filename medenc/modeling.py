"""Build sentence-transformers models: the real base model, or an MPNet with random weights from a config.

Random-weight models share the real tokenizer and the base model's module stack (Transformer, mean pooling,
normalize), so tests and GPU benchmarks exercise the same code path as the real model.
"""

from __future__ import annotations

from pathlib import Path

from medenc.base_model import resolve_base_model

# hidden, layers, heads, intermediate: "tiny" keeps unit tests to seconds on 2 cores; "base" is the shape of
# all-mpnet-base-v2, for benchmarks on machines where the real weights cannot travel.
SHAPES: dict[str, tuple[int, int, int, int]] = {"tiny": (32, 2, 2, 64), "base": (768, 12, 12, 3072)}


def load_base(device: str | None = None, max_seq_length: int | None = None):
    """The real, verified all-mpnet-base-v2 as a SentenceTransformer."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(resolve_base_model()), device=device)
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def build_random_model(
    shape: str = "tiny",
    max_seq_length: int = 128,
    seed: int = 0,
    device: str | None = None,
    tokenizer: str | Path | None = None,
):
    """An MPNet of the given shape with random weights, the real tokenizer, mean pooling and normalisation.

    ``tokenizer``: a folder with the base model's tokenizer files alone (tokenizer.json, vocab.txt,
    tokenizer_config.json, special_tokens_map.json), for machines without the base model; default: the base
    model folder.
    """
    import tempfile

    import torch
    from safetensors.torch import save_file
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import AutoTokenizer, MPNetConfig, MPNetModel

    hidden, layers, heads, intermediate = SHAPES[shape]
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer or resolve_base_model()))
    config = MPNetConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=514,
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
