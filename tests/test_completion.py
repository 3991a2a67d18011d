"""Shell completion through click's real protocol (`_XPM_COMPLETE=..._complete`)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import run_xpm
from tests.records import write_run


def complete(shell: str, words: str, cwd: Path | None = None) -> list[str]:
    """What xpm answers the shell for the last (incomplete) word of `words`."""
    parts = words.split(" ")
    env = dict(os.environ, _XPM_COMPLETE=f"{shell}_complete", COMP_WORDS=words,
               COMP_CWORD=str(len(parts) - 1) if shell != "fish" else parts[-1])
    result = run_xpm(env=env, cwd=cwd)
    assert result.code == 0, result
    return result.out.splitlines()


def values(words: str, cwd: Path | None = None) -> list[str]:
    return [line.split(",", 1)[1] for line in complete("bash", words, cwd) if line]


def test_run_names_then_numbers(project: Path) -> None:
    for _ in range(3):
        write_run(project, "mnist")
    write_run(project, "mlp", status="failed")
    write_run(project, "cifar")
    assert values("xpm show m") == ["mlp", "mnist"]
    assert values("xpm log mn") == ["mnist", "mnist/3", "mnist/2", "mnist/1"]
    assert values("xpm show mnist/") == ["mnist/3", "mnist/2", "mnist/1"]
    assert values("xpm show mnist/2") == ["mnist/2"]
    assert values("xpm show zzz") == []
    assert values("xpm ls c") == ["cifar"]  # ls takes names only


def test_names_linked_to_folders_elsewhere(project: Path, tmp_path: Path) -> None:
    (tmp_path / "scratch" / "big").mkdir(parents=True)
    (project / "results").mkdir()
    (project / "results" / "big").symlink_to(tmp_path / "scratch" / "big")
    write_run(project, "big")
    write_run(project, "bag")
    assert values("xpm show b") == ["bag", "big"]
    assert values("xpm log big/") == ["big/1"]
    assert values("xpm ls bi") == ["big"]


def test_diff_resume_and_clean_complete_runs(project: Path, tmp_path: Path) -> None:
    for _ in range(2):
        write_run(project, "mnist")
    write_run(project, "mlp", status="failed")
    assert values("xpm diff mnist/1 mn") == ["mnist", "mnist/2", "mnist/1"]
    assert values("xpm diff --code mnist/") == ["mnist/2", "mnist/1"]
    assert values("xpm resume ml") == ["mlp", "mlp/1"]
    assert values("xpm resume mnist/2") == ["mnist/2"]
    assert values("xpm clean m") == ["mlp", "mnist"]
    assert values("xpm clean --keep-last 1 mnist/") == ["mnist/2", "mnist/1"]
    assert values("xpm clean --checkpoints --keep 1 mnist/1") == ["mnist/1"]
    (tmp_path / "scratch" / "big").mkdir(parents=True)
    (project / "results" / "big").symlink_to(tmp_path / "scratch" / "big")
    write_run(project, "big")
    assert values("xpm show b") == ["big", "big/1"]
    assert values("xpm clean b") == []  # clean leaves runs behind links alone


def test_clean_completes_the_statuses_it_takes(project: Path) -> None:
    assert values("xpm clean --status fa") == ["failed"]
    assert values("xpm clean --status co") == ["completed"]  # never `corrupt`
    assert values("xpm clean --status failed,k") == ["failed,killed"]
    assert values("xpm clean --status failed,lost,") == [
        "failed,lost,queued", "failed,lost,running", "failed,lost,completed",
        "failed,lost,interrupted", "failed,lost,killed", "failed,lost,cancelled",
        "failed,lost,abandoned"]
    assert values("xpm ls --status co") == ["completed", "corrupt"]


def test_restore_completes_the_runs_in_the_trash(project: Path) -> None:
    write_run(project, "mlp", status="failed")
    write_run(project, "mlp", status="failed")
    write_run(project, "cnn", status="killed")
    write_run(project, "kept")
    assert run_xpm("clean", "-y").code == 0
    assert values("xpm restore ") == ["cnn", "mlp"]
    assert values("xpm restore m") == ["mlp", "mlp/2", "mlp/1"]
    assert values("xpm restore mlp/1 mlp/") == ["mlp/2", "mlp/1"]
    assert values("xpm restore k") == []  # not in the trash
    shown = "\n".join(complete("fish", "xpm restore cnn/"))
    assert "cnn/1" in shown and "killed, 1h ago" in shown and "mlp" not in shown
    assert values("xpm clean --empty-trash c") == ["cnn", "cnn/1"]
    assert values("xpm clean c") == ["cnn"]  # the name stays, its run is in the trash
    assert values("xpm clean k") == ["kept", "kept/1"]


def test_zsh_and_fish_describe_runs(project: Path) -> None:
    write_run(project, "mlp", status="failed")
    write_run(project, "mlp", status="running")  # this host, no lock: shown lost
    for shell in ("zsh", "fish"):  # the line format is click's and varies by its version
        shown = "\n".join(complete(shell, "xpm show mlp/"))
        assert shown.index("mlp/2") < shown.index("lost, 1h ago") < shown.index("mlp/1") \
            < shown.index("failed, 1h ago"), shown
    assert (project / "results" / "mlp" / "2" / "run.json").read_text().count('"running"') \
        == 1  # completion only reads: the record is not corrected


def test_paths_complete_as_folders(project: Path) -> None:
    write_run(project, "mnist")
    assert complete("bash", "xpm show ./res") == ["dir,./res"]
    assert complete("bash", "xpm log results/mnist/") == ["dir,results/mnist/"]


def test_commands_options_and_statuses(project: Path) -> None:
    assert values("xpm l") == ["log", "ls"]
    assert "--status" in values("xpm ls --st")
    assert values("xpm ls --status fa") == ["failed"]
    assert values("xpm ls --status failed,l") == ["failed,lost"]


def test_completion_never_fails(tmp_path: Path) -> None:
    (tmp_path / "xpm.yaml").write_text("results_dir: [not, a, string]\n")
    assert values("xpm show m", cwd=tmp_path) == []
    assert values("xpm ls m", cwd=tmp_path) == []


def test_setup_scripts_for_each_shell() -> None:
    for shell, marker in (("bash", "complete -o nosort -F _xpm_completion xpm"),
                          ("zsh", "compdef _xpm_completion xpm"),
                          ("fish", "complete --no-files --command xpm")):
        env = dict(os.environ, _XPM_COMPLETE=f"{shell}_source")
        result = run_xpm(env=env)
        assert result.code == 0 and marker in result.out, (shell, result)


def test_metric_names_for_keep_best_and_sort(project: Path) -> None:
    write_run(project, "a", metrics=[{"step": 1, "loss": 0.5, "val_loss": 0.6}])
    write_run(project, "b", metrics=[{"step": 1, "acc": 0.9, "val_acc": 0.8}])
    assert values("xpm clean --checkpoints --keep-best val_") == ["val_acc", "val_loss"]
    assert values("xpm clean --checkpoints --keep-best loss:m") == ["loss:min", "loss:max"]
    assert values("xpm ls --sort metrics.") == ["metrics.acc", "metrics.loss",
                                                "metrics.val_acc", "metrics.val_loss"]
    assert values("xpm ls --sort metrics.v") == ["metrics.val_acc", "metrics.val_loss"]
    assert "duration" in values("xpm ls --sort d")
    assert "metrics." in values("xpm ls --sort m")


def test_metric_completion_never_fails(tmp_path: Path) -> None:
    (tmp_path / "xpm.yaml").write_text("results_dir: [\n")
    assert values("xpm clean --checkpoints --keep-best l", cwd=tmp_path) == []
    assert values("xpm ls --sort metrics.", cwd=tmp_path) == []


def test_metric_names_for_m(project: Path) -> None:
    write_run(project, "a", metrics=[{"step": 1, "loss": 0.5, "val_loss": 0.6}])
    assert values("xpm metrics a/1 -m val") == ["val_loss"]
    assert values("xpm plot a -m l") == ["loss"]
