"""Features: the on-disk feature-pack store, one module per feature kind (how a kind's records
are loaded, validated and mocked) and the text embedders shared by several methods.

Packs are written by :mod:`benchmark.extract`; this package never imports torch.
"""
