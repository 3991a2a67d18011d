"""Keeping secrets out of what xpm records and says.

xpm writes what a run ran with (its command, chosen environment variables, the git
remote) into files that are copied, shared and shown. Secrets are recognised by name or
by form and masked (`***`) there, and in messages; the command itself still gets them:

- a variable whose name says it holds one (`HF_TOKEN`, `SLURM_JWT`, `DB_PASSWORD`, ...)
  is not recorded at all;
- credentials inside a URL (`postgres://u:pw@h/db`, `https://TOKEN@host/x`), in any
  recorded value or argument, become `***`;
- the value of an argument whose flag names a secret (`--api-key=v`, `--token v`,
  `--password=v`), and of a `NAME=value` argument whose NAME does (`env HF_TOKEN=v ...`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MASK = "***"

# Words in a variable's or flag's name that say it holds a secret.
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "JWT",
                "COOKIE", "APIKEY")
# A name with KEY as a part (API_KEY, WANDB_KEY, AWS_ACCESS_KEY_ID) holds one too, unless
# it names a key of another kind.
_KEY_PART = re.compile(r"(^|_)([A-Z]*KEYS?|PASS)(_|$)")
_OTHER_KEYS = re.compile(r"(^|_)(SORT|GROUP|PARTITION|PRIMARY|HOT|DICT|INDEX|MONKEY)_?KEYS?(_|$)")

# scheme://userinfo@ anywhere in a text (userinfo: no /, @ or whitespace)
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/@\s]+)@")
_ASSIGNMENT = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$", re.S)


def secret_name(name: str) -> bool:
    """Whether a variable or flag named `name` holds a secret (case and `-`/`_` aside)."""
    upper = name.strip("-").upper().replace("-", "_")
    if any(word in upper for word in SECRET_WORDS):
        return True
    return bool(_KEY_PART.search(upper)) and not _OTHER_KEYS.search(upper)


def mask_urls(text: str) -> str:
    """`postgres://u:pw@h/db` → `postgres://***@h/db`, wherever a URL is in `text`."""
    if "@" not in text or "://" not in text:
        return text
    return _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)


def strip_userinfo(url: str) -> str:
    """A URL without its userinfo (`git+https://TOKEN@host/x` → `git+https://host/x`), for
    every scheme: what identifies the repository stays, who logged in does not. Only an
    ssh login name without a password stays (`ssh://git@host/x`): ssh never takes a
    token there."""
    def strip(match: re.Match[str]) -> str:
        scheme, userinfo = match.group("scheme"), match.group("userinfo")
        if "ssh" in scheme.lower() and ":" not in userinfo:
            return match.group(0)
        return scheme

    return _URL_USERINFO.sub(strip, url, count=1)


def mask_argv(argv: Iterable[str]) -> tuple[str, ...]:
    """The command with secret values masked: `--api-key=v` and `--token v` (the value
    after a secret flag), `HF_TOKEN=v`, and credentials in URLs."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            hide_next = False
            if not arg.startswith("-") or arg == "-":
                out.append(MASK)
                continue
        if arg.startswith("-") and len(arg) > 2:
            flag, eq, _ = arg.partition("=")
            if secret_name(flag):
                if eq:
                    out.append(f"{flag}={MASK}")
                else:
                    out.append(arg)
                    hide_next = True
                continue
        match = _ASSIGNMENT.match(arg)
        if match and secret_name(match.group("name")):
            out.append(f"{match.group('name')}={MASK}")
            continue
        out.append(mask_urls(arg))
    return tuple(out)


def is_masked(argv: Iterable[str]) -> bool:
    """Whether a recorded command had secrets masked (it cannot be rerun as recorded)."""
    return any(MASK in arg for arg in argv)


def mask_variables(variables: Mapping[str, str]) -> dict[str, str]:
    """Variables to record: secret-named ones left out, URL credentials masked."""
    return {name: mask_urls(value) for name, value in variables.items()
            if not secret_name(name)}
