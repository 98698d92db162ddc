"""The one error type for bad user input, shared by the library and the CLI.

Raised with a one-line message naming the bad value and what is valid; the CLI prints it as
``error: ...`` with exit status 2 (a traceback only under ``-v``). It lives outside
:mod:`benchmark.cli` so that library code can raise it without importing the CLI.
"""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input from the user: printed as one line, exit status 2."""
