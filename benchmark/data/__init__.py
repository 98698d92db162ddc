"""Data in: the upstream files (URL + sha256; mirror, cache or download), the dataset catalog,
the published ground-truth tables as one long table, and the model-id lists of the zoos.

Nothing here knows about methods, protocols or results.
"""
