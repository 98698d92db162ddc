"""MLL (Tan et al., ICML 2025): the selector and its concept graph (WordNet, or a
concept list such as the minizoo world's)."""
