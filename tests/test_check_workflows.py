"""perf.tools.check_workflows: the real workflows pass, and each rule catches a small bad
workflow."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from perf.tools.check_workflows import (
    DEFAULT_WORKFLOWS,
    RULES,
    Violation,
    check_file,
    main,
    workflow_files,
)

ROOT = Path(__file__).resolve().parents[1]
SHA = "11d5960a326750d5838078e36cf38b85af677262"
CHECKOUT = f"actions/checkout@{SHA}"
SCRIPT = f"actions/github-script@{'f' * 40}"


def _check(tmp_path: Path, text: str) -> list[Violation]:
    path = tmp_path / "workflow.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return check_file(path)


def _rules(violations: list[Violation]) -> list[str]:
    return [v.rule for v in violations]


def _one(violations: list[Violation], rule: str) -> Violation:
    assert _rules(violations) == [rule], [str(v) for v in violations]
    assert f"[{rule}]" in str(violations[0])
    return violations[0]


def _job(
    steps: str, *, head: str = "", permissions: str = "permissions:\n  contents: read\n"
) -> str:
    """A one-job workflow on pull_request with ``steps`` (YAML, indented for a job)."""
    return (
        "on:\n  pull_request:\n"
        + permissions
        + "jobs:\n  build:\n    runs-on: ubuntu-latest\n"
        + textwrap.indent(textwrap.dedent(head), "    ")
        + "    steps:\n"
        + textwrap.indent(textwrap.dedent(steps), "      ")
    )


GOOD_STEPS = f"""\
- uses: {CHECKOUT} # v4.4.0
  with:
    persist-credentials: false
- name: Test
  env:
    TITLE: ${{{{ github.event.pull_request.title }}}}
  run: echo "$TITLE"
"""


def test_the_real_workflows_pass() -> None:
    files = workflow_files([DEFAULT_WORKFLOWS])
    assert {f.name for f in files} >= {"perf-pr.yml", "perf-nightly.yml", "tests.yml"}
    for path in files:
        assert check_file(path) == [], path


def test_a_clean_small_workflow_passes(tmp_path: Path) -> None:
    assert _check(tmp_path, _job(GOOD_STEPS)) == []


def test_every_rule_has_a_test() -> None:
    names = {name for name in globals() if name.startswith("test_rule_")}
    for rule in RULES:
        assert f"test_rule_{rule.replace('-', '_')}" in names


def test_rule_unpinned_action(tmp_path: Path) -> None:
    steps = GOOD_STEPS + "- uses: actions/setup-python@v5\n"
    found = _one(_check(tmp_path, _job(steps)), "unpinned-action")
    assert found.job == "build"
    assert found.step == "3 'actions/setup-python@v5'"
    assert "actions/setup-python@v5 is not pinned to a 40-hex commit SHA" in found.message
    # A short SHA is not a pin either; a local action and a docker digest are.
    steps = GOOD_STEPS + f"- uses: actions/setup-python@{SHA[:12]}\n"
    _one(_check(tmp_path, _job(steps)), "unpinned-action")
    steps = (
        GOOD_STEPS + f"- uses: ./.github/actions/local\n- uses: docker://alpine@sha256:{'a' * 64}\n"
    )
    assert _check(tmp_path, _job(steps)) == []


def test_rule_unpinned_action_on_a_reusable_workflow(tmp_path: Path) -> None:
    text = """\
        on: push
        permissions: {}
        jobs:
          call:
            uses: octo/repo/.github/workflows/ci.yml@main
        """
    found = _one(_check(tmp_path, text), "unpinned-action")
    assert found.job == "call"
    assert found.step is None


def test_rule_checkout_credentials(tmp_path: Path) -> None:
    steps = f"- uses: {CHECKOUT}\n  with:\n    fetch-depth: 0\n"
    found = _one(_check(tmp_path, _job(steps)), "checkout-credentials")
    assert "persist-credentials: false" in found.message
    steps = f"- uses: {CHECKOUT}\n  with:\n    persist-credentials: true\n"
    _one(_check(tmp_path, _job(steps)), "checkout-credentials")
    steps = f"- uses: {CHECKOUT}\n  with:\n    persist-credentials: 'false'\n"
    assert _check(tmp_path, _job(steps)) == []


def test_rule_always_condition(tmp_path: Path) -> None:
    steps = GOOD_STEPS + "- name: Upload\n  if: always()\n  run: echo done\n"
    found = _one(_check(tmp_path, _job(steps)), "always-condition")
    assert found.step == "3 'Upload'"
    assert "!cancelled()" in found.message
    head = "if: ${{ always() && github.event_name == 'pull_request' }}\n"
    found = _one(_check(tmp_path, _job(GOOD_STEPS, head=head)), "always-condition")
    assert found.job == "build"
    assert found.step is None
    steps = GOOD_STEPS + "- name: Upload\n  if: ${{ !cancelled() }}\n  run: echo done\n"
    assert _check(tmp_path, _job(steps)) == []


COMMENT_SCRIPT = """\
const marker = '<!-- crucible-perf-gate -->';
const comments = await github.paginate(github.rest.issues.listComments, params);
const mine = comments.find(c => {check}c.body.startsWith(marker));
if (mine) {
  await github.rest.issues.updateComment({owner, repo, comment_id: mine.id, body});
}
"""


def _comment_job(check: str) -> str:
    script = textwrap.indent(COMMENT_SCRIPT.replace("{check}", check), "      ")
    steps = f"- uses: {SCRIPT}\n  with:\n    script: |\n{script}"
    return _job(steps, head="permissions:\n  pull-requests: write\n")


def test_rule_comment_author(tmp_path: Path) -> None:
    found = _one(_check(tmp_path, _comment_job("")), "comment-author")
    assert "github-actions[bot]" in found.message
    # The login alone is not enough: a user account can be named like a bot.
    login_only = "c.user.login === 'github-actions[bot]' && "
    _one(_check(tmp_path, _comment_job(login_only)), "comment-author")
    both = "c.user.login === 'github-actions[bot]' && c.user.type === 'Bot' && "
    assert _check(tmp_path, _comment_job(both)) == []


def test_rule_pull_request_target(tmp_path: Path) -> None:
    text = _job(GOOD_STEPS).replace("on:\n  pull_request:\n", "on:\n  pull_request_target:\n")
    found = _one(_check(tmp_path, text), "pull-request-target")
    assert found.job is None
    text = _job(GOOD_STEPS).replace("on:\n  pull_request:\n", "on: [push, pull_request_target]\n")
    _one(_check(tmp_path, text), "pull-request-target")


def test_rule_write_permission(tmp_path: Path) -> None:
    # A job that checks out (runs PR code) may not write to pull requests.
    found = _one(
        _check(tmp_path, _job(GOOD_STEPS, head="permissions:\n  pull-requests: write\n")),
        "write-permission",
    )
    assert found.job == "build"
    assert "pull-requests: write" in found.message
    # Nor may any other scope, nor the whole workflow, nor a workflow that declares nothing.
    found = _one(
        _check(tmp_path, _job(GOOD_STEPS, head="permissions:\n  issues: write\n")),
        "write-permission",
    )
    assert "issues: write" in found.message
    found = _one(
        _check(tmp_path, _job(GOOD_STEPS, permissions="permissions: write-all\n")),
        "write-permission",
    )
    assert found.job is None
    assert "workflow-level permissions grant write (write-all)" in found.message
    found = _one(_check(tmp_path, _job(GOOD_STEPS, permissions="")), "write-permission")
    assert "no permissions:" in found.message


@pytest.mark.parametrize(
    ("condition", "allowed"),
    [
        (None, False),
        ("github.ref == 'refs/heads/main'", False),
        ("github.event_name == 'push'", False),
        ("github.ref == 'refs/heads/main' && github.event_name == 'push'", True),
        (
            "${{ github.ref_name == github.event.repository.default_branch"
            " && github.event_name != 'pull_request' }}",
            True,
        ),
        ("github.ref == 'refs/heads/main' || github.event_name == 'push'", False),
        ("!(github.ref == 'refs/heads/main') && github.event_name == 'push'", False),
    ],
)
def test_rule_write_permission_contents_only_on_the_default_branch(
    tmp_path: Path, condition: str | None, allowed: bool
) -> None:
    head = "permissions:\n  contents: write\n"
    if condition is not None:
        head += f'if: "{condition}"\n'
    text = _job(GOOD_STEPS, head=head).replace("on:\n  pull_request:\n", "on: [push]\n")
    found = _check(tmp_path, text)
    if allowed:
        assert found == []
    else:
        assert "contents: write" in _one(found, "write-permission").message


def test_rule_write_permission_lets_the_comment_job_write(tmp_path: Path) -> None:
    both = "c.user.login === 'github-actions[bot]' && c.user.type === 'Bot' && "
    assert _check(tmp_path, _comment_job(both)) == []


def test_rule_expression_injection(tmp_path: Path) -> None:
    steps = GOOD_STEPS + '- name: Title\n  run: echo "${{ github.event.pull_request.title }}"\n'
    found = _one(_check(tmp_path, _job(steps)), "expression-injection")
    assert found.step == "3 'Title'"
    assert "github.event.pull_request.title" in found.message
    assert "env:" in found.message
    steps = GOOD_STEPS + "- run: git log ${{github.head_ref}}\n"
    _one(_check(tmp_path, _job(steps)), "expression-injection")
    script = "    script: console.log('${{ github.event.issue.title }}')\n"
    steps = GOOD_STEPS + f"- uses: {SCRIPT}\n  with:\n{script}"
    _one(_check(tmp_path, _job(steps)), "expression-injection")
    # Trusted contexts may be interpolated.
    steps = GOOD_STEPS + "- run: echo ${{ github.run_attempt }} ${{ runner.temp }}\n"
    assert _check(tmp_path, _job(steps)) == []


def test_unreadable_yaml_is_a_violation(tmp_path: Path) -> None:
    found = _one(_check(tmp_path, "jobs: [unclosed\n"), "yaml")
    assert found.file.endswith("workflow.yml")


def test_main_prints_one_line_per_violation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(_job("- uses: actions/checkout@v4\n"), encoding="utf-8")
    assert main([str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert all("bad.yml: job 'build', step 1 'actions/checkout@v4': [" in line for line in lines)
    assert main([str(tmp_path / "empty-folder-that-is-missing")]) == 1
    (tmp_path / "none").mkdir()
    assert main([str(tmp_path / "none")]) == 2


def test_cli_in_a_subprocess(tmp_path: Path) -> None:
    """As a user (and nox -s lint) runs it, with perf/tools a namespace package."""
    clean = subprocess.run(
        [sys.executable, "-m", "perf.tools.check_workflows"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no violations" in clean.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text(_job("- if: always()\n  run: echo hi\n"), encoding="utf-8")
    dirty = subprocess.run(
        [sys.executable, "-m", "perf.tools.check_workflows", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert dirty.returncode == 1
    assert "[always-condition]" in dirty.stdout
    assert "1 violations in 1 files" in dirty.stderr


UPLOAD = f"actions/upload-artifact@{'e' * 40}"


def test_rule_upload_latest(tmp_path: Path) -> None:
    bad = f"""\
    - uses: {UPLOAD}
      with:
        name: runs-${{{{ github.run_attempt }}}}
        path: benchmark_results/
    """
    found = _one(_check(tmp_path, _job(bad)), "upload-latest")
    assert "!benchmark_results/latest" in found.message
    good = bad.replace(
        "path: benchmark_results/",
        "path: |\n          benchmark_results/\n          !benchmark_results/latest",
    )
    assert _check(tmp_path, _job(good)) == []


def test_rule_artifact_rerun(tmp_path: Path) -> None:
    bad = f"""\
    - uses: {UPLOAD}
      with:
        name: comment-${{{{ github.run_id }}}}
        path: comment.md
    """
    found = _one(_check(tmp_path, _job(bad)), "artifact-rerun")
    assert "run_attempt" in found.message
    assert _check(tmp_path, _job(bad + "    overwrite: true\n")) == []


def test_rule_unset_output(tmp_path: Path) -> None:
    head = "outputs:\n  verdict: ${{ steps.gate.outputs.verdict }}\n"
    bad = """\
    - id: gate
      run: echo "status=1" >> "$GITHUB_OUTPUT"
    """
    found = _one(_check(tmp_path, _job(bad, head=head)), "unset-output")
    assert "'verdict'" in found.message and "'gate'" in found.message
    good = bad.replace('echo "status=1"', 'echo "verdict=pass"')
    assert _check(tmp_path, _job(good, head=head)) == []
