"""The learner's workspace: copies of the notebooks and labs, outputs cleared, in a git-ignored folder.

The repository keeps its notebooks executed (their graphs show on GitHub), so a learner who ran
them in place would see every prediction answered before running anything and would change
tracked files (the next `git pull` conflicts). `make lab` opens this workspace instead. A copy is
made once, on the first start that finds it missing, and never overwritten: the learner's answers
and edits stay. `refresh` replaces one copy with the repository's current version after an update,
keeping the old one under `.replaced/`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

FOLDERS = ("notebooks", "labs")
DEFAULT_NAME = "my-work"
REPLACED = ".replaced"


class WorkspaceError(ValueError):
    """A notebook name that matches nothing, or matches more than one, in the repository."""


def clean_copy(source: Path) -> nbformat.NotebookNode:
    """Notebook `source` as a learner starts it: no outputs, no execution counts, no widget state."""
    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)
    return nb


def write(nb: nbformat.NotebookNode, target: Path) -> None:
    """Write `nb` to `target` through a temp file, so a killed process leaves no half notebook."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    nbformat.write(nb, partial)
    partial.replace(target)


@dataclass(frozen=True)
class Workspace:
    """The repository at `repo` and the learner's folder at `folder`."""

    repo: Path
    folder: Path

    def sources(self) -> list[Path]:
        """The repository's notebooks and labs that the workspace holds copies of."""
        return [path for sub in FOLDERS for path in sorted((self.repo / sub).glob("[0-9][0-9]-*.ipynb"))]

    def copy_of(self, source: Path) -> Path:
        return self.folder / source.relative_to(self.repo)

    def create(self) -> list[Path]:
        """Copy every notebook and lab the workspace lacks (all of them the first time, new topics
        after an update); the copies made. Existing copies are left as the learner left them."""
        made = []
        for source in self.sources():
            target = self.copy_of(source)
            if not target.exists():
                write(clean_copy(source), target)
                made.append(target)
        return made

    def find(self, name: str) -> list[Path]:
        """The repository notebooks `name` picks: a number ("01"), a file name, or a path under
        notebooks/ or labs/ ("labs/01" for one of the two)."""
        name = name.removesuffix(".ipynb").strip("/")
        folder, _, stem = name.rpartition("/")
        matches = [s for s in self.sources()
                   if (not folder or s.parent.name == folder)
                   and (s.stem == stem or s.stem.split("-", 1)[0] == stem)]
        if not matches:
            known = ", ".join(sorted({s.stem.split("-", 1)[0] for s in self.sources()}))
            raise WorkspaceError(f"no notebook or lab {name!r}; known numbers: {known} "
                                 f"(or labs/NN, notebooks/NN for one of the two)")
        return matches

    def refresh(self, name: str) -> list[tuple[Path, Path | None]]:
        """Replace the copies `name` picks with the repository's current versions; for each, the
        new copy and where the learner's old one was kept (None when there was none)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        done = []
        for source in self.find(name):
            target = self.copy_of(source)
            kept = None
            if target.exists():
                kept = self.folder / REPLACED / f"{target.stem}-{stamp}{target.suffix}"
                kept.parent.mkdir(parents=True, exist_ok=True)
                target.replace(kept)
            write(clean_copy(source), target)
            done.append((target, kept))
        return done
