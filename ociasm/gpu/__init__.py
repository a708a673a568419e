"""GPU builds and base-image choice, as Cog makes them.

`resolve` (local, no network) completes a config the way Cog's `Config.Complete` does for
`gpu: true` (CUDA and cuDNN from the torch / TensorFlow pins or the defaults), rewrites
pinned torch / torchvision / tensorflow requirements to the matrix's wheels and index, and
lists the base candidates; `choice.choose` then asks the registries (manifests only).

Modules: `version` (Cog's loose version rules), `compat` (Cog's data files), `resolve`
(CUDA, cuDNN, nvidia/cuda tag, wheel index), `cogbase` (cog-base configurations and tags),
`choice` (which base, with the fast-failing cog-base probe, and the cog-base labels).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from ociasm.config import CogConfig
from ociasm.errors import OciasmError

from .choice import BaseOptions, ChosenBase, base_options, choose, cog_base_labels
from .resolve import cuda_base_image, package_version, resolve_cuda, rewrite_requirements

__all__ = ["Resolution", "resolve", "choose", "cog_base_labels", "BaseOptions", "ChosenBase"]


@dataclass(frozen=True)
class Resolution:
    config: CogConfig        # cuda / cudnn filled in for a GPU build (what run.cog.config shows)
    requirements: list[str]  # what the deps layer installs, torch index lines first
    indexes: list[str]       # index lines the torch matrix added
    bases: BaseOptions


def resolve(config: CogConfig, requirements: list[str], *, use_cog_base_image: bool | None,
            use_cuda_base_image: str | None, warn: Callable[[str], None]) -> Resolution:
    build = config.build
    torch, tf = package_version(requirements, "torch"), package_version(requirements, "tensorflow")
    # Errors name the requirements when a framework pin decided, else the CUDA setting.
    where = config.where(("build.python_requirements" if build.python_requirements else "build.python_packages")
                         if torch is not None or tf is not None else "build.cuda" if build.cuda else "build.gpu")
    try:
        if build.gpu:
            cuda = resolve_cuda(build.cuda, build.cudnn, torch, tf, warn)
            config = dataclasses.replace(config, build=dataclasses.replace(build, cuda=cuda.cuda, cudnn=cuda.cudnn))
        rewritten = rewrite_requirements(requirements, build.gpu, config.build.cuda or "", warn)
        bases = base_options(
            gpu=build.gpu, cuda=config.build.cuda or "", python=build.python_version, torch=torch,
            cuda_tag=lambda: cuda_base_image(config.build.cuda or "", config.build.cudnn or ""),
            use_cog_base_image=use_cog_base_image, use_cuda_base_image=use_cuda_base_image)
    except OciasmError as e:
        raise OciasmError(f"{where}: {e}") from None
    return Resolution(config, rewritten.lines, rewritten.indexes, bases)
