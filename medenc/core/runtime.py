"""Run a sentence-transformers MPNet folder outside PyTorch: its ONNX and OpenVINO graphs and their encoders.

The release ships these graphs (built by ``medenc.export``) and the evaluation may score with them
(``medenc.evaluation.backends``), so both use this one conversion and this one encoder:

- ``export_onnx`` / ``export_openvino``: the transformer as a graph (input_ids, attention_mask) ->
  last_hidden_state, dynamic batch and sequence axes; pooling and normalisation stay with the caller, as
  sentence-transformers' ONNX and OpenVINO backends expect;
- ``ExportEncoder``: ``encode`` like a SentenceTransformer's over such a graph (tokenizer.json through the
  ``tokenizers`` library, mean pooling without padding, L2 normalisation); ``onnx_encoder`` and
  ``openvino_encoder`` build one for each runtime.

Only models that mean-pool can be run this way (``check_mean_pooling``): that is every model this project
trains, and the base model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medenc.core.errors import ModelError
from medenc.core.layout import INFERENCE_MAX_SEQ_LENGTH

BATCH_SIZE = 32

INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "last_hidden_state"
# torch's exporter writes opset 18 natively (no version conversion); onnxruntime has run it since 1.14.
OPSET = 18


def _token_module(model_dir: Path):
    """The transformer of ``model_dir`` as a module (input_ids, attention_mask) -> last_hidden_state."""
    import torch
    from transformers import AutoModel

    class TokenEmbeddings(torch.nn.Module):
        """What sentence-transformers' ONNX backend runs: the token embeddings, before pooling."""

        def __init__(self, transformer):
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask):
            return self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return TokenEmbeddings(AutoModel.from_pretrained(str(model_dir)).eval())


def _example():
    """An example batch: its sizes only seed the dynamic axes (2 x 8 tokens)."""
    import torch

    ids = torch.ones(2, 8, dtype=torch.long)
    return ids, torch.ones_like(ids)


def export_onnx(model_dir: Path, path: Path) -> None:
    """``onnx/model.onnx``: fp32 token embeddings, dynamic batch and sequence axes, in one file."""
    import torch

    # One Dim per axis, shared by both inputs: they always have the same shape.
    axes = {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence")}
    shapes = {name: axes for name in INPUT_NAMES}
    path.parent.mkdir(parents=True, exist_ok=True)
    # The exporter's optimizer logs every initializer it merges at INFO, about 136 lines a model: under
    # `make evaluate`, which logs INFO, five models put 680 of them in the run's published console log.
    logging.getLogger("onnx_ir").setLevel(logging.WARNING)
    with torch.no_grad():
        torch.onnx.export(
            _token_module(model_dir), _example(), str(path), input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME], dynamic_shapes=shapes, opset_version=OPSET, dynamo=True,
            external_data=False, verbose=False,
        )  # fmt: skip


def export_openvino(model_dir: Path, xml: Path) -> None:
    """``openvino/openvino_model.xml`` and ``.bin``: the same module converted by OpenVINO, fp32 weights."""
    import openvino as ov
    import torch

    ids, mask = _example()
    dynamic = [(name, ov.PartialShape([-1, -1]), ov.Type.i64) for name in INPUT_NAMES]
    with torch.no_grad():
        converted = ov.convert_model(
            _token_module(model_dir), example_input={"input_ids": ids, "attention_mask": mask}, input=dynamic
        )
    converted.outputs[0].get_tensor().set_names({OUTPUT_NAME})
    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(converted, str(xml), compress_to_fp16=False)


def load_tokenizer(model_dir: Path, max_length: int):
    """``tokenizer.json`` of ``model_dir`` (the ``tokenizers`` library), padding with the model's pad token
    and truncating at ``max_length``: what every export is fed, here and in the card's snippet."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    pad = pad_token(Path(model_dir))
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id(pad), pad_token=pad)
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


def tokenize(tokenizer, texts: list[str]):
    """(input_ids, attention_mask) of one batch, int64 as the exports take them."""
    enc = tokenizer.encode_batch(texts)
    return (
        np.array([e.ids for e in enc], dtype=np.int64),
        np.array([e.attention_mask for e in enc], dtype=np.int64),
    )


def pad_batch(ids: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, attention_mask) of one batch of unpadded token ids, padded on the right to the longest,
    as ``tokenize`` pads (MPNet's tokenizer pads on the right)."""
    width = max((len(x) for x in ids), default=0)
    out = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, x in enumerate(ids):
        out[row, : len(x)] = x
        mask[row, : len(x)] = 1
    return out, mask


def pad_token(model_dir: Path) -> str:
    """The tokenizer's padding token (tokenizer_config.json), ``<pad>`` when it names none."""
    path = Path(model_dir) / "tokenizer_config.json"
    pad = json.loads(path.read_text(encoding="utf-8")).get("pad_token") if path.is_file() else None
    if isinstance(pad, dict):
        pad = pad.get("content")
    return pad or "<pad>"


def check_mean_pooling(model_dir: Path) -> None:
    """Refuse a folder whose pooling is not plain mean pooling (what ``ExportEncoder`` computes)."""
    path = Path(model_dir) / "1_Pooling" / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"{path}: expected the pooling config of a sentence-transformers model ({exc})"
        ) from exc
    # sentence-transformers 6 writes ``pooling_mode: mean``; earlier versions (the base model) a flag a mode.
    modes = (
        [config["pooling_mode"]]
        if "pooling_mode" in config
        else sorted(
            k.removeprefix("pooling_mode_") for k, v in config.items() if k.startswith("pooling_mode_") and v
        )
    )
    if modes not in (["mean"], ["mean_tokens"]):
        raise ModelError(
            f"{path}: the ONNX/OpenVINO encoders mean-pool, this model pools with {modes or 'nothing'}; "
            "score it with a PyTorch backend (--backend torch-fp32)"
        )


Batch = tuple[np.ndarray, np.ndarray]  # (input_ids, attention_mask), int64
# Runs every batch through the graph and returns each one's pooled embeddings, in order.
RunMany = Callable[[list[Batch]], list[np.ndarray]]


def mean_pool(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the token embeddings over the real tokens, L2-normalised: what the model's modules compute."""
    m = mask[..., None].astype(tokens.dtype)
    emb = (tokens * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
    return emb / np.clip(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12, None)


class ExportEncoder:
    """``encode`` like a SentenceTransformer's, over an exported graph: tokenizer.json (the ``tokenizers``
    library), the graph's token embeddings, mean pooling without padding, L2 normalisation.

    ``run``: one batch's token embeddings; ``run_many`` (optional): all of an ``encode`` call's batches at
    once, pooled, for a runtime that overlaps them (OpenVINO's streams)."""

    device = "cpu"

    def __init__(
        self,
        run: Callable[[np.ndarray, np.ndarray], np.ndarray],
        model_dir: Path,
        max_seq_length: int,
        run_many: RunMany | None = None,
        precision: str | None = None,
    ):
        self._run_many = run_many or (lambda batches: [mean_pool(run(ids, m), m) for ids, m in batches])
        self.tokenizer = load_tokenizer(Path(model_dir), max_seq_length)
        # The same tokenizer without padding: batches are formed by token count first, then padded.
        self._unpadded = load_tokenizer(Path(model_dir), max_seq_length)
        self._unpadded.no_padding()
        self._max_seq_length = max_seq_length
        self.precision = precision  # what the runtime computes in, where it says

    @property
    def max_seq_length(self) -> int:
        return self._max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        # The evaluation sets the length per text kind (128 for short texts, 256 for passages), as on a
        # SentenceTransformer: the tokenizer must truncate there too, or an export sees more of each text
        # than the PyTorch model it is compared with.
        self._max_seq_length = value
        for tokenizer in (self.tokenizer, self._unpadded):
            tokenizer.enable_truncation(max_length=value)

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        """Each text's token ids, truncated at the length cap and not padded."""
        return [e.ids for e in self._unpadded.encode_batch(texts)]

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text at the current length cap (``encode_texts`` sorts by them)."""
        return [len(x) for x in self._token_ids(list(texts))]

    def encode(self, sentences: Sequence[str], batch_size: int = BATCH_SIZE, **_: Any) -> np.ndarray:
        """Embeddings in input order; batches are formed most tokens first (each pads to its longest, so
        similar token counts share a batch; ``SentenceTransformer.encode`` sorts by characters)."""
        texts = [sentences] if isinstance(sentences, str) else list(sentences)
        ids = self._token_ids(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))
        pad_id = self.tokenizer.padding["pad_id"]
        cuts = range(0, len(texts), batch_size)
        batches = [pad_batch([ids[i] for i in order[s : s + batch_size]], pad_id) for s in cuts]
        parts = self._run_many(batches)
        if not parts:
            return np.zeros((0, 0), dtype=np.float32)
        out = np.empty_like(np.concatenate(parts))
        out[np.asarray(order)] = np.concatenate(parts)
        return out.astype(np.float32)


def onnx_encoder(
    path: Path, model_dir: Path, max_seq_length: int = INFERENCE_MAX_SEQ_LENGTH
) -> ExportEncoder:
    """An onnxruntime session (CPU) of an ONNX export."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return session.run([OUTPUT_NAME], {"input_ids": ids, "attention_mask": mask})[0]

    return ExportEncoder(run, model_dir, max_seq_length, precision="fp32")


def openvino_encoder(
    xml: Path,
    model_dir: Path,
    max_seq_length: int = INFERENCE_MAX_SEQ_LENGTH,
    precision: str | None = "f32",
    throughput: bool = False,
) -> ExportEncoder:
    """The OpenVINO IR compiled for the CPU; ``precision`` its inference precision hint (None: OpenVINO's
    default, which is bf16 on CPUs with bf16 units such as AMX, hence fp32 asked for explicitly).

    ``throughput``: OpenVINO's throughput hint, several streams (two on a 2-core CPU) each running a batch,
    fed through an async queue: 1.2-1.3x the texts/s of one stream over the suite's batches here, where one
    batch of short texts cannot keep both cores busy (docs/evaluation.md). The release's measurements keep
    the latency default, which is what ``SentenceTransformer(..., backend="openvino")`` gives users."""
    import openvino as ov

    config = {"INFERENCE_PRECISION_HINT": precision} if precision else {}
    if throughput:
        config["PERFORMANCE_HINT"] = "THROUGHPUT"
    compiled = ov.Core().compile_model(str(xml), "CPU", config)
    used = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()  # bf16 or f32, as it runs

    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return compiled({"input_ids": ids, "attention_mask": mask})[0]

    # One request a stream, waited on from Python: no Python callback ever runs on OpenVINO's threads, so the
    # compiled model's destructor never waits on a thread that waits for the GIL (it hung with a callback).
    requests = [compiled.create_infer_request() for _ in range(int(compiled.get_property("NUM_STREAMS")))]

    def run_many(batches: list[Batch]) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for start in range(0, len(batches), len(requests)):
            group = list(zip(requests, batches[start : start + len(requests)], strict=False))  # last: fewer
            for request, (ids, mask) in group:
                request.start_async({"input_ids": ids, "attention_mask": mask})
            for request, (_, mask) in group:  # batches are length-sorted: the group ends together
                request.wait()
                out.append(mean_pool(request.get_output_tensor(0).data, mask))
        return out

    return ExportEncoder(run, model_dir, max_seq_length, run_many if throughput else None, used)
