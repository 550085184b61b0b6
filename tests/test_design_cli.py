"""`trace-tui policy suggest | diff` against the real server and its seeded demo traces."""

from __future__ import annotations

from pathlib import Path

import pytest

from samplers import parse_policy
from trace_tui.cli import main


def test_suggest_then_diff_from_the_data(seeded, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--tracking-uri", seeded.uri, "--experiment", seeded.experiment_name]
    assert main(["policy", "suggest", *common, "--budget", "40/h", "--since", "30d"]) == 0
    captured = capsys.readouterr()
    assert "# key fields by traffic share" in captured.err
    old = parse_policy(captured.out)
    assert old.budget.max_traces == 40 and old.source.experiment_name == seeded.experiment_name
    old_file = tmp_path / "old.toml"
    old_file.write_text(captured.out)
    new_file = tmp_path / "new.toml"
    new_file.write_text(captured.out.replace("max_traces = 40", "max_traces = 80")
                        .replace('version = "1"', 'version = "2"'))
    assert main(["policy", "diff", *common, str(old_file), str(new_file), "--since", "30d"]) == 0
    out = capsys.readouterr().out
    assert "@1#" in out and "@2#" in out and "->" in out and "total: sample/window" in out


def test_suggest_rejects_a_bad_budget(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "suggest", "--budget", "lots"]) == 2
    assert "--budget: expected N/WINDOW" in capsys.readouterr().err

