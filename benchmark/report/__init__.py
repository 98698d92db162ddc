"""Reporting: the leaderboard (results -> Markdown pages), plots, paired significance analysis
and the comparison of two runs. Pure functions of results directories.
"""
