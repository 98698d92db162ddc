"""INB: the ImageNet baseline -- rank models by their ImageNet-1k zero-shot top-1 accuracy.

ImageNet-1k is side information of every protocol, never a target, so this baseline sees
nothing of the target but its candidate list (LOVM, Zohar et al. 2023, "ImageNet baseline").
"""

from __future__ import annotations

import pandas as pd

from methods.base import Selector, TargetView


class ImageNetBaseline(Selector):
    name = "inb"
    target_needs = "nothing (ImageNet-1k accuracy)"
    citation = "Zohar et al., LOVM, NeurIPS 2023 D&B (ImageNet baseline)."

    def score(self, target: TargetView) -> pd.Series:
        cands = list(target.candidates)
        missing = [m for m in cands if m not in target.imagenet.index]
        if missing:
            raise ValueError(f"inb: no ImageNet-1k accuracy for {missing[:3]} (side information)")
        return target.imagenet.reindex(cands).astype(float)

    def predict(self, target: TargetView) -> pd.Series:
        """LOVM's ``get_imagenet_model_pred``: the ImageNet-1k top-1 as the prediction."""
        return self.score(target)
