"""Reproducible installs: constraints.txt pins every dependency pyproject.toml declares,
each within its declared range, and every install path (Makefile, Dockerfile) uses it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"
REFRESH = "run `make lock` (README.md, \"Dependencies\"), then `make test`, and commit constraints.txt"


def _pins() -> dict[str, Version]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"constraints.txt: {line!r} is not NAME==VERSION; {REFRESH}"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    texts = project["project"]["dependencies"] + sum(project["project"]["optional-dependencies"].values(), [])
    return [Requirement(text) for text in texts + build]


def test_every_declared_dependency_is_pinned_within_its_range():
    pins = _pins()
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is declared but not pinned: {REFRESH}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{requirement.name}: the pin {pins[name]} is outside {requirement.specifier}: {REFRESH}")


def test_every_declared_dependency_has_a_lower_bound_the_lock_reaches():
    # A bound no pin has reached would claim support for a version the suite never ran.
    pins = _pins()
    for requirement in _declared():
        lows = [Version(spec.version) for spec in requirement.specifier if spec.operator in (">=", "==", "~=")]
        assert lows, f"{requirement}: give it a lower bound (the version constraints.txt pins)"
        assert max(lows) <= pins[canonicalize_name(requirement.name)], requirement


def test_installs_use_the_constraints():
    makefile = (ROOT / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if re.search(r"\$\(PIP\) install .*-e", line)]
    assert installs and all("-c $(CONSTRAINTS)" in line for line in installs), installs
    assert re.search(r"^CONSTRAINTS\s*:=\s*constraints\.txt$", makefile, flags=re.MULTILINE)
    dockerfile = (ROOT / "Dockerfile").read_text()
    wheel = re.search(r"^RUN pip wheel .*$", dockerfile, flags=re.MULTILINE)
    assert wheel and "-c constraints.txt" in wheel.group(0), "the image's dependencies are the pinned ones"
    assert re.search(r"^COPY [^\n]*\bconstraints\.txt\b", dockerfile, flags=re.MULTILINE), \
        "the build stage has the constraints file"
