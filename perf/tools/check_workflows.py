"""Static check of the GitHub Actions workflows that run the perf gate on pull requests.

    python -m perf.tools.check_workflows [PATH ...]

PATH is a workflow file or a folder of them (default: this checkout's .github/workflows).
Each violation is one line naming the file, the job and the step, and the rule in brackets;
the exit status is 1 when there is any, 0 when there is none, 2 when no workflow was found.

The rules, and why (docs/security.md has the whole story):

    unpinned-action       every ``uses:`` names a full 40-hex commit (a tag can be moved)
    checkout-credentials  actions/checkout has ``persist-credentials: false`` (PR code runs
                          after it and would find the token in .git/config)
    always-condition      no ``always()`` in a job or step ``if:`` (it ignores cancellation;
                          use ``!cancelled()``)
    comment-author        a github-script that edits a comment it found (by a marker) checks
                          that github-actions[bot] wrote it (anyone can write the marker)
    pull-request-target   no ``pull_request_target`` trigger (a write token beside PR code)
    write-permission      permissions are declared; no write scope except
                          ``pull-requests: write`` in a job that checks nothing out, and
                          ``contents: write`` in a job whose ``if:`` limits it to the default
                          branch and to events other than pull requests
    expression-injection  no ``${{ github.event.* }}`` (or ``github.head_ref``) written into a
                          ``run:`` script or a github-script ``script:`` (pass it via ``env:``)

A file that is not YAML, or not a workflow, is reported under ``yaml``. Nothing below
:func:`main` prints or exits: :func:`check_workflow` takes a parsed document
and returns the violations, so each rule is testable on a small YAML text.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = [
    "DEFAULT_WORKFLOWS",
    "RULES",
    "Violation",
    "check_file",
    "check_workflow",
    "main",
    "workflow_files",
]

DEFAULT_WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"

RULES = (
    "unpinned-action",
    "checkout-credentials",
    "always-condition",
    "comment-author",
    "pull-request-target",
    "write-permission",
    "expression-injection",
    "upload-latest",
    "artifact-rerun",
    "unset-output",
)

_SHA = re.compile(r"[0-9a-f]{40}")
_DOCKER_DIGEST = re.compile(r"docker://[^@\s]+@sha256:[0-9a-f]{64}")
_ALWAYS = re.compile(r"\balways\s*\(\s*\)")
_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_UNTRUSTED = re.compile(r"\bgithub\s*\.\s*(event\s*\.|head_ref\b)")
_EDITS_COMMENT = re.compile(r"\b(updateComment|deleteComment)\b")
_BOT_LOGIN = re.compile(r"\.user\.login\s*===?\s*['\"]github-actions\[bot\]['\"]")
_BOT_TYPE = re.compile(r"\.user\.type\s*===?\s*['\"]Bot['\"]")
# Conditions that keep a job with ``contents: write`` to the default branch and off pull
# requests; each must be a whole ``&&`` term of the job's ``if:`` (compared without spaces).
_DEFAULT_BRANCH_TERMS = (
    re.compile(r"github\.ref=='refs/heads/(main|master)'"),
    re.compile(r"github\.ref_name=='(main|master)'"),
    re.compile(
        r"github\.ref==format\('refs/heads/\{0\}',github\.event\.repository\.default_branch\)"
    ),
    re.compile(r"github\.ref_name==github\.event\.repository\.default_branch"),
)
_NON_PR_TERMS = (
    re.compile(r"github\.event_name=='(push|schedule|workflow_dispatch|release|merge_group)'"),
    re.compile(r"github\.event_name!='pull_request'"),
)


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: where (file, job, step; None where it is the whole workflow or job)
    and what."""

    file: str
    rule: str
    message: str
    job: str | None = None
    step: str | None = None

    def __str__(self) -> str:
        job = f"job {self.job!r}" if self.job is not None else "job -"
        step = f"step {self.step}" if self.step is not None else "step -"
        return f"{self.file}: {job}, {step}: [{self.rule}] {self.message}"


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _steps(job: Mapping[str, object]) -> list[Mapping[str, object]]:
    steps = job.get("steps")
    if not isinstance(steps, list):
        return []
    return [_mapping(s) for s in steps]


def _step_label(index: int, step: Mapping[str, object]) -> str:
    name = _text(step.get("name")) or _text(step.get("uses"))
    if not name:
        lines = _text(step.get("run")).strip().splitlines()
        name = lines[0][:60] if lines else ""
    return f"{index + 1} {name!r}" if name else str(index + 1)


def _action(uses: str) -> str:
    """``owner/repo`` (lower case) of a ``uses:`` value, without path or ref."""
    return "/".join(uses.split("@", 1)[0].split("/")[:2]).lower()


def _triggers(doc: Mapping[object, object]) -> list[str]:
    # YAML 1.1 (PyYAML) reads the key ``on`` as the boolean True.
    on = doc.get("on", doc.get(True))
    if isinstance(on, str):
        return [on]
    if isinstance(on, list):
        return [t for t in on if isinstance(t, str)]
    if isinstance(on, Mapping):
        return [t for t in on if isinstance(t, str)]
    return []


def _write_scopes(permissions: object) -> list[str]:
    if isinstance(permissions, str):
        return ["write-all"] if permissions.strip() == "write-all" else []
    return sorted(
        str(scope) for scope, level in _mapping(permissions).items() if str(level) == "write"
    )


def _terms(condition: str) -> list[str] | None:
    """The ``&&`` terms of a condition, without spaces, ``${{ }}`` and outer parentheses;
    None when it has an ``||`` (then no single term is known to hold)."""
    text = re.sub(r"\s+", "", condition)
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    if "||" in text:
        return None
    terms = []
    for term in text.split("&&"):
        while term.startswith("(") and term.endswith(")"):
            term = term[1:-1]
        terms.append(term)
    return terms


def _default_branch_only(condition: str) -> bool:
    """Whether an ``if:`` keeps a job to the default branch and to events other than pull
    requests: both as ``&&`` terms of the whole condition (an ``||`` anywhere fails it)."""
    terms = _terms(condition)
    if not terms:
        return False

    def has(patterns: Iterable[re.Pattern[str]]) -> bool:
        return any(p.fullmatch(t) for p in patterns for t in terms)

    return has(_DEFAULT_BRANCH_TERMS) and has(_NON_PR_TERMS)


def _check_uses(uses: str) -> str | None:
    if uses.startswith("./"):
        return None
    if uses.startswith("docker://"):
        if _DOCKER_DIGEST.fullmatch(uses):
            return None
        return f"{uses} is not pinned to an image digest (docker://image@sha256:<64 hex>)"
    _, _, ref = uses.partition("@")
    if _SHA.fullmatch(ref):
        return None
    return f"{uses} is not pinned to a 40-hex commit SHA; write uses: owner/repo@<full sha> # <tag>"


def _always_message(condition: str) -> str:
    return (
        f"if: {condition.strip()} runs even when the run is cancelled; "
        "use ${{ !cancelled() && ... }}"
    )


def _check_injection(text: str, where: str) -> list[str]:
    return [
        f"${{{{{expr}}}}} is written into the {where}; pass it through env: and use the "
        "variable instead"
        for expr in _EXPRESSION.findall(text)
        if _UNTRUSTED.search(expr)
    ]


def _check_step(step: Mapping[str, object]) -> list[tuple[str, str]]:
    """(rule, message) pairs for one step."""
    found: list[tuple[str, str]] = []
    uses = _text(step.get("uses"))
    with_ = _mapping(step.get("with"))
    if uses:
        problem = _check_uses(uses)
        if problem:
            found.append(("unpinned-action", problem))
    if _action(uses) == "actions/checkout":
        persist = with_.get("persist-credentials")
        if persist is not False and str(persist).strip().lower() != "false":
            found.append(
                (
                    "checkout-credentials",
                    "actions/checkout without persist-credentials: false leaves the token "
                    "in .git/config for every later step, PR code included",
                )
            )
    condition = step.get("if")
    if isinstance(condition, str) and _ALWAYS.search(condition):
        found.append(("always-condition", _always_message(condition)))
    found += [
        ("expression-injection", m) for m in _check_injection(_text(step.get("run")), "run: script")
    ]
    found += _check_upload(step)
    if _action(uses) == "actions/github-script":
        script = _text(with_.get("script"))
        found += [("expression-injection", m) for m in _check_injection(script, "github-script")]
        if _EDITS_COMMENT.search(script) and not (
            _BOT_LOGIN.search(script) and _BOT_TYPE.search(script)
        ):
            found.append(
                (
                    "comment-author",
                    "edits a comment it found without checking its author; match the "
                    "marker only when c.user.login === 'github-actions[bot]' && "
                    "c.user.type === 'Bot'",
                )
            )
    return found


def _check_upload(step: Mapping[str, object]) -> list[tuple[str, str]]:
    """An upload of run folders must leave out the ``latest`` link (the artifact would hold
    the newest run twice), and its name must differ per attempt (or overwrite), else a
    re-run of the job fails on the name the first attempt used."""
    if _action(_text(step.get("uses"))) != "actions/upload-artifact":
        return []
    with_ = _mapping(step.get("with"))
    paths = [p.strip() for p in _text(with_.get("path")).splitlines() if p.strip()]
    found: list[tuple[str, str]] = []
    for path in paths:
        folder = path.rstrip("/")
        if folder.endswith("benchmark_results") and f"!{folder}/latest" not in paths:
            found.append(
                (
                    "upload-latest",
                    f"uploads {path} with its latest link, so the newest run is stored twice; "
                    f"add !{folder}/latest to path:",
                )
            )
    name = _text(with_.get("name"))
    overwrite = str(with_.get("overwrite", "")).strip().lower() == "true"
    if name and "run_attempt" not in name and not overwrite:
        found.append(
            (
                "artifact-rerun",
                f"artifact {name!r} is named the same in every attempt: a re-run fails to "
                "upload it; add ${{ github.run_attempt }} to the name or overwrite: true",
            )
        )
    return found


_OUTPUT_REF = re.compile(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)")


def _check_outputs(job: Mapping[str, object]) -> list[str]:
    """Every output a job declares from a step's outputs must be written by that step's
    script (``NAME=...`` into ``$GITHUB_OUTPUT``); one that never is reads as empty."""
    scripts = {_text(s.get("id")): _text(s.get("run")) for s in _steps(job) if _text(s.get("id"))}
    messages = []
    for output, value in _mapping(job.get("outputs")).items():
        for step_id, name in _OUTPUT_REF.findall(_text(value)):
            script = scripts.get(step_id)
            if script is None:
                messages.append(f"output {output!r} reads step {step_id!r}, which has no run:")
            elif not re.search(rf"\b{re.escape(name)}=", script) or "GITHUB_OUTPUT" not in script:
                messages.append(
                    f"output {output!r} is declared but step {step_id!r} never sets "
                    f'{name} (echo "{name}=..." >> "$GITHUB_OUTPUT")'
                )
    return messages


def _check_permissions(job: Mapping[str, object], declared_above: bool) -> list[str]:
    """Messages about one job's own ``permissions:`` (or their absence)."""
    if "permissions" not in job:
        if declared_above:
            return []
        return [
            "no permissions: for the workflow or the job, so the token gets the repository "
            "default, which can be write-all; declare permissions: contents: read"
        ]
    runs_repo_code = any(
        _action(_text(s.get("uses"))) == "actions/checkout" or _text(s.get("uses")).startswith("./")
        for s in _steps(job)
    )
    condition = job.get("if")
    messages = []
    for scope in _write_scopes(job["permissions"]):
        if scope == "pull-requests" and not runs_repo_code:
            continue
        if scope == "contents" and isinstance(condition, str) and _default_branch_only(condition):
            continue
        if scope == "pull-requests":
            why = "only a job that checks nothing out (it runs no PR code) may comment"
        elif scope == "contents":
            why = (
                "contents: write needs an if: that limits the job to the default branch "
                "and to non-PR events (e.g. github.ref == 'refs/heads/main' && "
                "github.event_name == 'push')"
            )
        else:
            why = "only pull-requests (comment job) and contents (default branch) may write"
        messages.append(f"{scope}: write is not allowed here: {why}")
    return messages


def check_workflow(doc: object, file: str) -> list[Violation]:
    """Every violation of :data:`RULES` in one parsed workflow document."""
    if not isinstance(doc, Mapping):
        return [Violation(file, "yaml", "not a workflow: the document is not a mapping")]
    found: list[Violation] = []
    if "pull_request_target" in _triggers(doc):
        found.append(
            Violation(
                file,
                "pull-request-target",
                "on: pull_request_target runs with a write token and secrets in the base "
                "repository's context; use pull_request",
            )
        )
    top_writes = _write_scopes(doc.get("permissions"))
    if top_writes:
        found.append(
            Violation(
                file,
                "write-permission",
                f"workflow-level permissions grant write ({', '.join(top_writes)}); "
                "keep the workflow read-only and grant writes to the one job that needs them",
            )
        )
    jobs = doc.get("jobs")
    if not isinstance(jobs, Mapping) or not jobs:
        found.append(Violation(file, "yaml", "not a workflow: no jobs"))
        return found
    for job_id, job_value in jobs.items():
        job_name = str(job_id)
        job = _mapping(job_value)
        for message in _check_permissions(job, "permissions" in doc):
            found.append(Violation(file, "write-permission", message, job=job_name))
        for message in _check_outputs(job):
            found.append(Violation(file, "unset-output", message, job=job_name))
        condition = job.get("if")
        if isinstance(condition, str) and _ALWAYS.search(condition):
            found.append(
                Violation(file, "always-condition", _always_message(condition), job=job_name)
            )
        reusable = _text(job.get("uses"))
        if reusable:
            problem = _check_uses(reusable)
            if problem:
                found.append(Violation(file, "unpinned-action", problem, job=job_name))
        for index, step in enumerate(_steps(job)):
            label = _step_label(index, step)
            for rule, message in _check_step(step):
                found.append(Violation(file, rule, message, job=job_name, step=label))
    return found


def check_file(path: Path, display: str | None = None) -> list[Violation]:
    """Parse one workflow file (PyYAML, safe loader) and check it."""
    name = display or str(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        detail = str(exc).replace("\n", " ")
        return [Violation(name, "yaml", f"cannot be read as YAML: {detail}")]
    return check_workflow(doc, name)


def workflow_files(paths: Iterable[Path]) -> list[Path]:
    """The files to check: each path given, or the *.yml and *.yaml files of a folder."""

    def expand(path: Path) -> Iterator[Path]:
        if path.is_dir():
            yield from sorted((*path.glob("*.yml"), *path.glob("*.yaml")))
        else:
            yield path

    return [f for p in paths for f in expand(p)]


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m perf.tools.check_workflows",
        description="Check GitHub Actions workflows against the perf gate's CI rules.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help=f"workflow files or folders (default: {_display(DEFAULT_WORKFLOWS)})",
    )
    args = parser.parse_args(argv)
    files = workflow_files(args.paths or [DEFAULT_WORKFLOWS])
    if not files:
        print("check_workflows: no workflow files found; nothing was checked", file=sys.stderr)
        return 2
    violations = [v for f in files for v in check_file(f, _display(f))]
    for violation in violations:
        print(violation)
    if violations:
        print(
            f"check_workflows: {len(violations)} violations in {len(files)} files",
            file=sys.stderr,
        )
        return 1
    print(f"check_workflows: {len(files)} workflow files, no violations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
