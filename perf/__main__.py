"""``python -m perf COMMAND``: the Crucible perf gate's command line.

Commands are modules with a ``main(argv) -> int``; add one to ``COMMANDS`` to extend it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence

__all__ = ["COMMANDS", "main"]

# command -> (module with main(argv) -> int, one-line help)
COMMANDS: Mapping[str, tuple[str, str]] = {
    "gate": ("perf.gate", "measure head vs base (or the baseline), decide, write the reports"),
    "run": ("perf.run", "measure the benchmark suites into benchmark_results/"),
    "profile": ("perf.profile", "memray and py-spy profiles, memory and leak gate, diff profiles"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: python -m perf COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "python -m perf COMMAND --help lists a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"python -m perf: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    entry: Callable[[Sequence[str]], int] = module.main
    return entry(rest)


if __name__ == "__main__":
    raise SystemExit(main())
