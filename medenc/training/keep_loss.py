"""``mnrl_keep``: MNRL plus a term that keeps each text's embedding near the start model's (issue 39).

The contrastive phases push every non-synonym away, related concepts included ("type 2 diabetes" /
"metformin"), and so lose what the base knew about how concepts relate. Weight averaging with the base
(WiSE-FT, ``averaging``) pulls the finished weights back; this term holds the embeddings back during
training instead: for every text of the batch (anchors, positives, negatives), the cosine distance between
the model's embedding and the frozen start model's, averaged, times ``keep_weight``. Where MNRL needs a text
to move, it moves; where it does not, the base's geometry stays. Imported only when the loss is built, so
reading a recipe does not import torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from sentence_transformers.base.losses.merged_forward import embed_columns
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from torch import Tensor, nn


class KeepNearStartLoss(nn.Module):
    """``inner`` (MNRL) on the model's embeddings + ``weight`` x mean(1 - cos(model, guide)) over texts."""

    def __init__(self, model, inner: MultipleNegativesRankingLoss, guide, weight: float) -> None:
        super().__init__()
        self.model = model
        self.inner = inner
        self.guide = guide
        self.weight = weight

    def drift(self, embeddings: list[Tensor], starts: list[Tensor]) -> Tensor:
        """The mean cosine distance of each text's embedding to its start embedding."""
        distances = [
            1 - torch.nn.functional.cosine_similarity(e, s.to(e.dtype), dim=-1)
            for e, s in zip(embeddings, starts, strict=True)
        ]
        return torch.cat(distances).mean()

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        sentence_features = list(sentence_features)
        # The guide writes its outputs into the dicts it gets: give it shallow copies (as GISTEmbedLoss does).
        guide_features = [dict(features) for features in sentence_features]
        embeddings = embed_columns(self.model, sentence_features)
        with torch.no_grad():
            starts = embed_columns(self.guide, guide_features)
        loss = self.inner.compute_loss_from_embeddings(embeddings, labels)
        return loss + self.weight * self.drift(embeddings, starts)

    def get_config_dict(self) -> dict[str, Any]:
        """What the model card lists for this loss."""
        return {"inner": type(self.inner).__name__, "scale": self.inner.scale, "keep_weight": self.weight}
