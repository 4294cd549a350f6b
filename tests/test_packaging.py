"""The conda/Binder environment installs the same package as pyproject.toml, on a Python it allows."""

import tomllib
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_installs_this_package_with_its_dev_extras():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
    assert pip_section == ["-e .[dev]"], "dependencies belong in pyproject.toml only"


def test_environment_python_satisfies_requires_python():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(dep for dep in env["dependencies"] if isinstance(dep, str) and dep.startswith("python="))
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python.split("=", 1)[1] + ".0" in SpecifierSet(required)


def test_question_banks_ship_with_the_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "questions/*.yaml" in config["tool"]["setuptools"]["package-data"]["backendlab"]
