"""Paths as reports show them: relative to the repository, never the machine's folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from perf.decide.baseline import load_baseline
from perf.errors import BaselineError
from perf.paths import BASELINES, REPO_ROOT, TEMPLATES, display_path


def test_a_path_inside_the_repository_is_shown_relative_to_it() -> None:
    assert display_path(BASELINES / "quick.json") == "baselines/quick.json"
    assert display_path(TEMPLATES) == "templates"


def test_a_path_outside_the_repository_is_shown_as_given(tmp_path: Path) -> None:
    assert display_path(tmp_path / "x.json") == str(tmp_path / "x.json")


def test_a_missing_baseline_in_the_repository_is_named_without_the_machines_folders() -> None:
    with pytest.raises(BaselineError) as caught:
        load_baseline(BASELINES / "no-such-set.json")
    assert "baselines/no-such-set.json" in str(caught.value)
    assert str(REPO_ROOT) not in str(caught.value)
