"""xpm: keep machine-learning experiments in a plain results tree.

    import xpm
    run = xpm.current_run()        # the run this process was started in, or None

The API is loaded on first use, so that `import xpm` (and the `xpm` command) stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:
    from .api import Config, Run, current_run, load, load_run, seed_everything
    from .errors import XpmError

__all__ = [
    "Config", "Run", "XpmError", "__version__", "current_run", "load", "load_run",
    "seed_everything",
]

_API = {"Config", "Run", "current_run", "load", "load_run", "seed_everything"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    if name == "XpmError":
        from .errors import XpmError

        return XpmError
    raise AttributeError(f"module 'xpm' has no attribute {name!r}")
