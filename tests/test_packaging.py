"""environment.yml and pyproject.toml must name the same packages and pins."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower()


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return {_name(r): r.replace(" ", "") for r in reqs}


def _environment_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {_name(r): r.replace(" ", "") for r in pip if not r.startswith("-e")}


def _constraints() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return {_name(r): r.strip() for r in lines if r.strip() and not r.startswith("#")}


def test_environment_yml_matches_pyproject_with_torch_pinned_as_in_constraints():
    env, project, pins = _environment_requirements(), _pyproject_requirements(), _constraints()
    assert set(pins) == {"torch", "torchvision"}
    assert {k: v for k, v in env.items() if k not in pins} == {k: v for k, v in project.items() if k not in pins}
    assert {k: env[k] for k in pins} == pins


def test_torch_is_a_range_that_keeps_an_installed_torch_and_admits_the_pins():
    """pyproject states the supported range (pip leaves a machine's own torch >= 2.4 alone);
    the exact releases of the published runs live in constraints.txt, inside that range."""
    from packaging.requirements import Requirement
    project = {Requirement(r).name: Requirement(r) for r in
               tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    for name, other in (("torch", "2.4.0"), ("torchvision", "0.19.0")):
        spec = project[name].specifier
        assert "==" not in str(spec), f"{name} is pinned in pyproject.toml: {spec}"
        pinned = _constraints()[name].split("==")[1]
        assert spec.contains(pinned) and spec.contains(other) and spec.contains("2.99.0")
    setup = (ROOT / "scripts" / "ensure_venv.sh").read_text()
    assert setup.count('-c "$ROOT/constraints.txt"') == 2


def test_environment_pins_python_311():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
