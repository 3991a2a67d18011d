"""gitcode: the runs' code as git trees, and the listing of what changed between them."""

from __future__ import annotations

from xpm.vcs.trees import _files


def test_git_diff_listing_parsed() -> None:
    names = b"M\0a.py\0R087\0old.py\0new.py\0A\0img.png\0"
    numstat = b"3\t1\ta.py\0" + b"2\t2\t\0old.py\0new.py\0" + b"-\t-\timg.png\0"
    changes = _files(names, numstat)
    assert [(c.status, c.path, c.old_path, c.insertions, c.deletions) for c in changes] == [
        ("modified", "a.py", None, 3, 1),
        ("renamed", "new.py", "old.py", 2, 2),
        ("added", "img.png", None, None, None),
    ]
