"""A toy text embedder for the mock universe's class names: one axis per word, so identical
class names have cosine 1 and different ones 0 (shared by the SWAB and baseline tests)."""

from __future__ import annotations

import numpy as np

from benchmark.features.embedders import Embedder

WORDS = ["cat", "dog", "car", "tree", "boat", "house", "bird", "plane", "apple", "chair"]


class WordEmbedder(Embedder):
    """One axis per word: the last word of a prompt ("a photo of cat." -> cat)."""

    name, dim = "words", len(WORDS)

    @property
    def identity(self) -> str:
        return "words v1"

    def _embed_batch(self, texts):
        out = np.zeros((len(texts), self.dim))
        for i, t in enumerate(texts):
            out[i, WORDS.index(t.rstrip(".").split()[-1])] = 1.0
        return out


EMB = WordEmbedder()
