"""Live notebook displays for drills: `LiveDashboard`, `Comparison`, `show_episode`, `plot_history`.

The core never imports this package; these plug into a drill as callbacks. Names are loaded
on first use, so `from dexterity_nb.widgets import plot_history` (the CLI) never imports
ipywidgets.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "LiveDashboard": "dexterity_nb.widgets.dashboard",
    "Comparison": "dexterity_nb.widgets.comparison",
    "show_episode": "dexterity_nb.widgets.episode",
    "EpisodePlayer": "dexterity_nb.widgets.episode",
    "plot_history": "dexterity_nb.widgets.plots",
    "process_pending_widget_messages": "dexterity_nb.widgets.kernel_messages",
}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module 'dexterity_nb.widgets' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


def __dir__():
    return __all__
