"""The conda and Binder environments install this package from pyproject.toml (the one list of
dependencies), on a Python it allows."""

import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_installs_this_package_with_its_dev_extras():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
    assert pip_section == ["-e .[dev]"], "dependencies belong in pyproject.toml only"


@pytest.mark.parametrize("path", ["environment.yml", "binder/environment.yml"])
def test_environment_python_satisfies_requires_python(path):
    env = yaml.safe_load((ROOT / path).read_text())
    python = next(dep for dep in env["dependencies"] if isinstance(dep, str) and dep.startswith("python="))
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python.split("=", 1)[1] + ".0" in SpecifierSet(required)


def test_binder_installs_the_package_after_the_repository_is_copied():
    env = yaml.safe_load((ROOT / "binder/environment.yml").read_text())
    assert not any(isinstance(dep, dict) for dep in env["dependencies"]), "no pip section before the copy"
    post_build = ROOT / "binder/postBuild"
    assert 'pip install --no-cache-dir -e ".[dev]"' in post_build.read_text()
    assert post_build.stat().st_mode & 0o100, "postBuild must be executable"


def test_question_banks_are_declared_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = config["tool"]["setuptools"]["package-data"]["backendlab"]
    assert declared == ["topics/*/questions.yaml"]
    banks = sorted((ROOT / "backendlab").glob(declared[0]))
    assert len(banks) >= 6, "every built topic's bank matches the pattern"
