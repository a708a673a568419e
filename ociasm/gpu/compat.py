"""Cog's compatibility data: CUDA base images, PyTorch wheels and TensorFlow builds.

The JSON files in `data/` are Cog's own (`pkg/config/{cuda,torch,tf}_compatibility.json`;
provenance in `data/sources.json`, refreshed by `scripts/refresh-compat-data.py`). They are
read once, and shaped the way Cog's loader shapes them: TensorFlow's CUDA is cut to
major.minor and its cuDNN to the major (NVIDIA tags carry only that), and PyTorch rows
built for a CUDA that has no base image are dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from . import version

DATA_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True)
class CudaImage:
    tag: str      # "12.1.1-cudnn8-devel-ubuntu22.04"
    cuda: str     # "12.1.1"
    cudnn: str    # "8"
    ubuntu: str   # "22.04"

    @property
    def reference(self) -> str:
        return f"nvidia/cuda:{self.tag}"


@dataclass(frozen=True)
class TorchRow:
    torch: str            # "2.3.1+cu121"
    torchvision: str
    torchaudio: str
    find_links: str
    extra_index_url: str
    cuda: str | None      # None: the CPU build
    pythons: tuple[str, ...]

    @property
    def torch_version(self) -> str:
        return version.strip_modifier(self.torch)

    @property
    def torchvision_version(self) -> str:
        return version.strip_modifier(self.torchvision)


@dataclass(frozen=True)
class TFRow:
    tf: str
    gpu_package: str      # "tensorflow==2.15.0"
    cuda: str             # major.minor
    cudnn: str            # major
    pythons: tuple[str, ...]


def _load(name: str) -> list[dict]:
    return json.loads((DATA_DIR / f"{name}_compatibility.json").read_text())


@cache
def cuda_images() -> tuple[CudaImage, ...]:
    return tuple(CudaImage(r["Tag"], r["CUDA"], r["CuDNN"], r["Ubuntu"]) for r in _load("cuda"))


@cache
def tf_rows() -> tuple[TFRow, ...]:
    rows = []
    for r in _load("tf"):
        cuda, cudnn = version.Version.parse(r["CUDA"]), version.Version.parse(r["CuDNN"])
        assert cuda and cudnn, f"bad TensorFlow row {r}"
        rows.append(TFRow(r["TF"], r["TFGPUPackage"], f"{cuda.major}.{cuda.minor}", str(cudnn.major),
                          tuple(r["Pythons"])))
    return tuple(rows)


@cache
def torch_rows() -> tuple[TorchRow, ...]:
    images = cuda_images()
    rows = (TorchRow(r["Torch"], r["Torchvision"], r["Torchaudio"], r["FindLinks"], r["ExtraIndexURL"],
                     r["CUDA"], tuple(r["Pythons"])) for r in _load("torch"))
    return tuple(row for row in rows
                 if row.cuda is None or any(version.matches(row.cuda, i.cuda) for i in images))
