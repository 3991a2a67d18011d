"""Reading xpm.yaml: the checkpoint patterns it accepts and refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from xpm.errors import XpmError
from xpm.project import DEFAULT_CHECKPOINT_PATTERNS, parse_settings

YAML = Path("/p/xpm.yaml")


@pytest.mark.parametrize("pattern, words", [
    ("/tmp/x/*", "is not relative to the run folder"),
    ("~/scratch/*.pt", "is not relative to the run folder"),
    ("../shared/*.pt", "leads out of the run folder with `..`"),
    ("checkpoints/../../*", "leads out of the run folder with `..`"),
    ("", "names the run folder itself"),
    (".", "names the run folder itself"),
    ("ckpt**", "has `**` inside a name"),
    ("bad\0name", "contains a NUL character"),
])
def test_unusable_checkpoint_patterns_are_refused(pattern: str, words: str) -> None:
    with pytest.raises(XpmError) as caught:
        parse_settings({"checkpoints": ["checkpoints/*", pattern]}, YAML)
    message = str(caught.value)
    shown = pattern.replace("\0", "\\0")
    assert message.startswith(f"{YAML}: `checkpoints` pattern `{shown}` {words}"), message
    assert "\n" not in message and "; " in message  # one line, with what to do


def test_usable_checkpoint_patterns_are_kept() -> None:
    patterns = ["checkpoints/*", "./weights/*.bin", "**/*.safetensors", "step_[0-9]*", "*/"]
    assert parse_settings({"checkpoints": patterns}, YAML).checkpoints == tuple(patterns)
    assert parse_settings({"checkpoints": "ckpt/*"}, YAML).checkpoints == ("ckpt/*",)
    assert parse_settings({}, YAML).checkpoints == DEFAULT_CHECKPOINT_PATTERNS
