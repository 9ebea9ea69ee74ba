"""Baseline mode judges time only side by side: the baseline's commit is measured beside
the head when the clone has it; without it, time is not judged and the run says why."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import perf.gate as gate
from perf.decide.baseline import Baseline, load_baseline, write_baseline
from perf.decide.policy import Mode
from perf.measure.meta import GitState
from tests.baseline_fixtures import baseline_document
from tests.git_fixtures import git, two_commit_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return two_commit_repo(tmp_path / "repo")


def _config(repo: Path) -> gate.GateConfig:
    args = gate.build_parser().parse_args(["--baseline", str(repo / "quick.json")])
    return replace(gate.config_from_args(args), root=repo)


def _baseline_at(repo: Path, commit: str) -> Baseline:
    write_baseline(repo / "quick.json", baseline_document(commit=commit))
    return load_baseline(repo / "quick.json")


def test_the_baselines_commit_is_measured_beside_the_head(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD~1")
    head = GitState(commit=git(repo, "rev-parse", "HEAD"), dirty=False)
    notes: list[str] = []
    config, commit, label = gate._beside_the_baseline(
        _config(repo), _baseline_at(repo, first), head, notes
    )
    assert config.mode is Mode.PR and commit == first
    assert label == f"baseline commit {first[:12]} (paired)"
    assert notes == [
        f"head vs baseline commit {first[:12]} (paired): the commit {repo / 'quick.json'} "
        "was taken at, measured beside the head in this run"
    ]


def test_head_at_the_baselines_commit_is_an_a_a_run(repo: Path) -> None:
    tip = git(repo, "rev-parse", "HEAD")
    notes: list[str] = []
    config, commit, _ = gate._beside_the_baseline(
        _config(repo), _baseline_at(repo, tip), GitState(commit=tip, dirty=False), notes
    )
    assert config.mode is Mode.PR and commit == tip
    assert "an A/A run of this machine" in notes[0]


def test_without_the_commit_time_is_not_judged_and_the_note_says_how_to_fetch_it(
    repo: Path,
) -> None:
    missing = "b" * 40
    head = GitState(commit=git(repo, "rev-parse", "HEAD"), dirty=False)
    notes: list[str] = []
    config, commit, label = gate._beside_the_baseline(
        _config(repo), _baseline_at(repo, missing), head, notes
    )
    assert config.mode is Mode.BASELINE and commit is None
    assert "time not judged" in label
    (note,) = notes
    assert note.startswith("time and latency not judged:")
    assert f"git fetch origin {missing}" in note and "--base REF" in note
