"""environment.yml and pyproject.toml declare the same dependency set."""

from __future__ import annotations

import re
import tomllib

import yaml


def _names(requirements):
    return {re.split(r"[<>=!~ \[]", r.strip('"'), maxsplit=1)[0].lower() for r in requirements}


def test_environment_matches_pyproject(repo_root):
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((repo_root / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_requirements = {r for r in pip_section if not r.startswith("-e")}
    assert env_requirements == declared
    assert _names(env_requirements) == _names(declared)
