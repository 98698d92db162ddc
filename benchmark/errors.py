"""The one error type for bad user input, shared by the library and the CLI.

Raised with a one-line message naming the bad value and what is valid; the CLI prints it as
``error: ...`` with exit status 2 (a traceback only under ``-v``). It lives outside
:mod:`benchmark.cli` so that library code can raise it without importing the CLI.
"""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input from the user: printed as one line, exit status 2."""


def one_line(text: object, limit: int = 300) -> str:
    """The first line of ``text`` (e.g. an upstream library's error) for a one-line message:
    whole when it fits in ``limit`` characters, else cut at a word boundary with "…"."""
    lines = str(text).strip().splitlines()
    first = lines[0].strip() if lines else ""
    if len(first) <= limit:
        return first
    cut = first[:limit].rsplit(" ", 1)[0].rstrip(" ,;:")
    return f"{cut or first[:limit]} …"
