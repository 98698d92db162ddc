"""MLL (Tan et al., ICML 2025): the selector and its WordNet concept graph."""
