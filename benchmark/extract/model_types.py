"""What a model loader returns and raises (shared by open_clip's and the towers' loaders)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ModelLoadError(RuntimeError):
    """A zoo model cannot be loaded for extraction (one-line message with the fix)."""


class WeightsUnavailableError(ModelLoadError):
    pass


@dataclass
class LoadedModel:
    id: str
    model: Any  # open_clip CLIP / CustomTextCLIP / CoCa, eval mode
    preprocess: Any  # the model's own eval transform (PIL image -> tensor)
    tokenizer: Any
    random_init: bool
