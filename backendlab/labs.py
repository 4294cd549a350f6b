"""Labs generated from solutions, so a learner's exercise never drifts from the worked answer.

`solutions/NN-topic.ipynb` is the single source. In its code cells, the lines between
`### BEGIN SOLUTION` and `### END SOLUTION` (nbgrader's markers) become one stub line at the
marker's indentation in `labs/NN-topic.ipynb`: `raise NotImplementedError(...)`, or the code the
BEGIN line names, as in `### BEGIN SOLUTION (stub: return {})`. The lab keeps no outputs or
execution counts, so a learner starts clean. `backendlab labs` writes every lab;
`--check` fails when a committed lab differs from what the generator makes.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

BEGIN = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION(?: \(stub: (?P<stub>.+)\))?[ \t]*$")
END = re.compile(r"^[ \t]*### END SOLUTION[ \t]*$")
DEFAULT_STUB = 'raise NotImplementedError("write this part: see the instructions above")'
PATTERN = "[0-9][0-9]-*.ipynb"
FIX = ".venv/bin/backendlab labs"


class LabError(ValueError):
    """A solution notebook whose markers cannot be turned into a lab."""


def stub_solutions(source: str, where: str) -> str:
    """`source` with each marked region replaced by its stub; `where` names the cell in errors."""
    out, opened = [], None
    for number, line in enumerate(source.split("\n"), 1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if opened:
                raise LabError(f"{where}, line {number}: BEGIN SOLUTION inside the region opened "
                               f"on line {opened}; regions cannot nest")
            opened = number
            out.append(begin["indent"] + (begin["stub"] or DEFAULT_STUB))
        elif end:
            if not opened:
                raise LabError(f"{where}, line {number}: END SOLUTION without a BEGIN SOLUTION")
            opened = None
        elif "BEGIN SOLUTION" in line or "END SOLUTION" in line:
            raise LabError(f"{where}, line {number}: malformed marker {line.strip()!r}; write "
                           "`### BEGIN SOLUTION`, `### BEGIN SOLUTION (stub: CODE)` or "
                           "`### END SOLUTION`")
        elif not opened:
            out.append(line)
    if opened:
        raise LabError(f"{where}, line {opened}: BEGIN SOLUTION is never closed by END SOLUTION")
    return "\n".join(out)


def generate(solution_path: str | Path) -> nbformat.NotebookNode:
    """The lab notebook for one solution notebook."""
    nb = nbformat.read(solution_path, as_version=4)
    for index, cell in enumerate(nb.cells, 1):
        where = f"{solution_path}: cell {index}"
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            if any(BEGIN.match(line) or END.match(line) for line in cell.source.split("\n")):
                raise LabError(f"{where}: solution markers work in code cells only")
            continue
        cell.source = stub_solutions(cell.source, where)
        cell.outputs = []
        cell.execution_count = None
    nbformat.validate(nb)
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    """The exact text a notebook is stored as (nbformat's stable JSON, one final newline)."""
    return nbformat.writes(nb).rstrip("\n") + "\n"


def find_root(start: Path | None = None) -> Path:
    """The nearest folder holding solutions/ at or above `start` (default: the working folder)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "solutions").is_dir():
            return folder
    raise LabError(f"no solutions/ folder in {here} or above it; run from the project or pass "
                   "--root")


def pairs(root: Path) -> list[tuple[Path, Path]]:
    """(solution, lab) paths for every solution notebook under `root`."""
    return [(solution, root / "labs" / solution.name)
            for solution in sorted((root / "solutions").glob(PATTERN))]


def write_all(root: Path | None = None) -> list[Path]:
    """Write every lab from its solution; returns the labs written."""
    root = root or find_root()
    written = []
    for solution, lab in pairs(root):
        lab.parent.mkdir(exist_ok=True)
        lab.write_text(render(generate(solution)), encoding="utf-8")
        written.append(lab)
    return written


def drift(root: Path | None = None) -> list[str]:
    """One line per lab that differs from what its solution generates, is missing or is orphaned."""
    root = root or find_root()
    problems = []
    for solution, lab in pairs(root):
        name = lab.relative_to(root)
        if not lab.is_file():
            problems.append(f"{name} is missing (generated from {solution.relative_to(root)})")
        elif lab.read_text(encoding="utf-8") != render(generate(solution)):
            problems.append(f"{name} differs from what {solution.relative_to(root)} generates")
    expected = {lab for _, lab in pairs(root)}
    problems += [f"{lab.relative_to(root)} has no solutions/{lab.name}: delete it, or add the "
                 "solution" for lab in sorted((root / "labs").glob(PATTERN)) if lab not in expected]
    return problems


def main(argv: list[str] | None = None) -> int:
    """`backendlab labs [--check] [--root DIR]`."""
    parser = argparse.ArgumentParser(prog="backendlab labs",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a lab differs from what its solution makes")
    parser.add_argument("--root", type=Path,
                        help="the project folder (default: found from here upward)")
    args = parser.parse_args(argv)
    try:
        root = args.root.resolve() if args.root else find_root()
        if args.check:
            problems = drift(root)
            for problem in problems:
                print(problem)
            if problems:
                fix = FIX + (f" --root {args.root}" if args.root else "")
                print(f"run `{fix}` to regenerate the labs")
                return 1
            print(f"{len(pairs(root))} labs match their solutions")
            return 0
        for lab in write_all(root):
            print(f"wrote {lab.relative_to(root)}")
        return 0
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
