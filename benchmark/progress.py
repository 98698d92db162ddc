"""When to draw progress bars, and the stage lines printed instead of them.

Bars are drawn only on a terminal: ``stderr`` is a TTY and ``$CI`` is unset. ``VLMBENCH_PROGRESS``
overrides both (``1`` always, ``0`` never); ``--no-progress`` turns them off for one command.
Without bars, long stages still say what they do, one line each on ``stderr`` (:func:`stage`).
Third-party bars (transformers' "Loading weights", huggingface_hub downloads) follow the same
rule (:func:`quiet_third_party`).

A leaf module like :mod:`benchmark.errors`: it imports nothing from the project, so every layer
may use it.
"""

from __future__ import annotations

import contextlib
import os
import sys

ENV = "VLMBENCH_PROGRESS"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def bars_enabled(requested: bool = True) -> bool:
    """Whether a progress bar should be drawn (``requested`` False: never)."""
    if not requested:
        return False
    forced = os.environ.get(ENV, "").strip().lower()
    if forced in _TRUE:
        return True
    if forced in _FALSE:
        return False
    if os.environ.get("CI", "").strip().lower() not in {"", "0", "false"}:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def stage(message: str, requested: bool = True) -> None:
    """One line on stderr describing a long stage, printed only when no bar is drawn.

    ``requested`` is the caller's progress flag: with ``--no-progress`` nothing is printed
    either (the caller asked for silence); in CI (no terminal) the line replaces the bar.
    """
    if requested and not bars_enabled(requested):
        print(message, file=sys.stderr, flush=True)


def quiet_third_party() -> None:
    """Silence transformers' and huggingface_hub's own bars when ours are off."""
    if bars_enabled():
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    mod = sys.modules.get("transformers")
    if mod is not None:
        with contextlib.suppress(AttributeError):  # very old transformers
            mod.utils.logging.disable_progress_bar()
    hub = sys.modules.get("huggingface_hub")
    if hub is not None:
        with contextlib.suppress(AttributeError):
            hub.utils.disable_progress_bars()
