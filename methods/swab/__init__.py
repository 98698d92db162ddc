"""SWAB (Yi et al., NeurIPS 2024): the selectors and the optimal-transport transfer they use."""
