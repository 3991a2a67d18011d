"""Who and where this process is: the host and user names every record names."""

from __future__ import annotations

import os


def hostname() -> str:
    return os.uname().nodename


def username() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return os.environ.get("USER") or str(os.getuid())
