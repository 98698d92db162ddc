"""vlmbench: a benchmark of methods that choose a vision-language model for a new task.

Light by design: importing it (and running published-data methods) never imports torch.
"""

from __future__ import annotations

__version__ = "0.1.0"


def check_selector(method, params=None):
    """Conformance checks of a selector (see :mod:`benchmark.core.check`)."""
    from benchmark.core.check import check_selector as _check

    return _check(method, params)


__all__ = ["__version__", "check_selector"]
