"""Cog's pre-built base images: `<registry>/cog-base:<tag>`, named as Cog's pkg/dockerfile/base.go names them.

The configurations Cog publishes come from the torch matrix: one per (CUDA, Python, torch)
row (CUDA >= 11.6, Python >= 3.10, torch >= 1.13.1), CPU torch rows without CUDA, every
Python x CUDA pair seen there, and each Python alone. A build's (CUDA, Python, torch) is
normalised against them (torch 2.3 -> the newest 2.3.x listed; a torch no configuration has
is dropped) and the tag joins the parts: `cuda11.8-python3.11-torch2.3.1`, `python3.12`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from . import compat, version

NAME = "cog-base"
DEFAULT_REGISTRY = "r8.im"
REGISTRY_ENV = "COG_REGISTRY_HOST"
_MIN_CUDA, _MIN_PYTHON, _MIN_TORCH = "11.6", "3.10", "1.13.1"


@dataclass(frozen=True)
class Configuration:
    cuda: str
    python: str
    torch: str


@cache
def configurations() -> tuple[Configuration, ...]:
    found: list[Configuration] = []
    pythons: dict[str, None] = {}  # insertion-ordered sets
    cudas: dict[str, None] = {}
    for row in compat.torch_rows():
        for python in row.pythons:
            if not version.greater_or_equal(python, _MIN_PYTHON) or \
                    not version.greater_or_equal(row.torch, _MIN_TORCH):
                continue
            if row.cuda is None:
                found.append(Configuration("", python, row.torch))
            elif version.greater_or_equal(row.cuda, _MIN_CUDA):
                found.append(Configuration(row.cuda, python, row.torch))
                pythons[python] = None
                cudas[row.cuda] = None
    found += [Configuration(cuda, python, "") for python in pythons for cuda in cudas]
    found += [Configuration("", python, "") for python in pythons]
    return tuple(found)


def _compatible(have: str, wanted: str) -> bool:
    if not have or not wanted:
        return have == wanted
    return version.matches(wanted, have)


def _fits(conf: Configuration, cuda: str, python: str, torch: str) -> bool:
    return _compatible(conf.cuda, cuda) and _compatible(conf.python, python) and _compatible(conf.torch, torch)


def normalise_torch(cuda: str, python: str, torch: str) -> str:
    """The newest listed torch that fits the request ("" when none does)."""
    best = ""
    for conf in configurations():
        if _fits(conf, cuda, python, torch) and (not best or version.greater(conf.torch, best)):
            best = version.strip_modifier(conf.torch)
    return best


def registry_host() -> str:
    return os.environ.get(REGISTRY_ENV) or DEFAULT_REGISTRY


@dataclass(frozen=True)
class CogBase:
    cuda: str
    python: str
    torch: str

    @property
    def tag(self) -> str:
        parts = [f"cuda{version.strip_patch(self.cuda)}" if self.cuda else "",
                 f"python{version.strip_patch(self.python)}" if self.python else "",
                 f"torch{version.strip_modifier(self.torch)}" if self.torch else ""]
        return "-".join(p for p in parts if p) or "latest"

    def reference(self, host: str | None = None) -> str:
        return f"{host or registry_host()}/{NAME}:{self.tag}"


def describe(cuda: str, python: str, torch: str) -> str:
    """Cog's wording for a configuration it has no base image for."""
    return (f"unsupported base image configuration: CUDA: {cuda or '(none)'} / "
            f"Python: {python or '(none)'} / Torch: {torch or '(none)'}")


def cog_base_for(cuda: str, python: str, torch: str) -> CogBase | None:
    """The cog-base image for a build, or None when Cog publishes no such configuration."""
    torch = normalise_torch(cuda, python, torch)
    if not any(_fits(conf, cuda, python, torch) for conf in configurations()):
        return None
    return CogBase(cuda, python, torch)
