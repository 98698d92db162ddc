"""vlmbench: a benchmark of methods that choose a vision-language model for a new task.

The library API (lazy: ``import benchmark`` stays light and never imports torch)::

    import benchmark
    res = benchmark.evaluate(["inb", "avgrank"], protocol="lovm", seeds=3)
    res.table(); res.save("results/lovm/mine")
    pages = benchmark.leaderboard("results/leaderboard")

Packages, in dependency order (each imports only those before it):
``data`` (upstream files, catalog, ground truth, zoos) -> ``features`` (pack store, feature
kinds, text embedders) -> ``core`` (protocol, views, harness, metrics, results, check) ->
``methods`` (top-level package: selectors) -> ``report`` (leaderboard, plots, analysis) and
``studies`` (sweep, sample efficiency) -> ``api`` -> ``cli``. ``extract`` (torch) writes
feature packs and imports the light packages, never the reverse; ``minizoo`` trains the
miniature zoo.
"""

from __future__ import annotations

__version__ = "0.1.0"

_API = {"evaluate": "benchmark.api", "leaderboard": "benchmark.api", "Results": "benchmark.api",
        "score": "benchmark.api"}


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'benchmark' has no attribute {name!r}")


def check_selector(method, params=None):
    """Conformance checks of a selector (see :mod:`benchmark.core.check`)."""
    from benchmark.core.check import check_selector as _check

    return _check(method, params)


__all__ = ["__version__", "Results", "check_selector", "evaluate", "leaderboard", "score"]
