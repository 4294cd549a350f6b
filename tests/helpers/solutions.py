"""A solution notebook's answers as an importable module, for tests that call a lab's checks on
them directly."""

import importlib.util
from pathlib import Path

import nbformat

PROJECT = Path(__file__).resolve().parents[2]


def import_file(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def solution_module(solution: Path, folder: Path):
    """The code cells of a solution notebook that hold its answers, imported as a module."""
    cells = [cell.source for cell in nbformat.read(solution, as_version=4).cells
             if cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source]
    path = folder / f"solution_{solution.stem[:2]}.py"
    path.write_text("\n\n".join(cells))
    return import_file(path, path.stem)
