"""CUDA, cuDNN, the nvidia/cuda tag and the torch wheel index, resolved as Cog resolves them.

Mirrors Cog's pkg/config (validateAndCompleteCUDA, cudaBaseImageFor, pythonPackageForArch):
a TensorFlow pin decides CUDA and cuDNN; else a torch pin decides CUDA (the newest listed for
it, or the one its `+cuXYZ` names) and cuDNN is the newest with an image for that CUDA; else
CUDA 11.8. The image is the highest CUDA patch for that CUDA and cuDNN, then the highest
Ubuntu. Pinned torch / torchvision / tensorflow lines are rewritten to the matrix's wheel and
its index (`--extra-index-url https://download.pytorch.org/whl/cu121/`; `/whl/cpu/` on CPU).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from ociasm.errors import OciasmError

from . import compat, version

DEFAULT_CUDA = "11.8"  # Cog's defaultCUDA(): Replicate's fleet floor, not the newest
# Cog's requirements.PackageName / Versions / SplitPinnedPythonRequirement patterns.
_PACKAGE_NAME = re.compile(r"^([a-zA-Z0-9_\-.]+(?:\[[^\]]+\])?)")
_SPECIFIER_VERSION = re.compile(r"[<>=!~]=?\s*([^\s,;|]+)")
_URL_VERSION = re.compile(r"@\s*(\S+)")
_PINNED = re.compile(r"([a-zA-Z0-9\-_]+)==([^ ]+)")
_TORCH_CUDA = re.compile(r"\+cu(\d{2,})$")
_INDEX_OPTIONS = ("--extra-index-url", "--index-url", "-i", "--find-links", "-f")


def package_version(requirements: list[str], name: str) -> str | None:
    """The first version a requirement on `name` mentions ("" when unpinned); None when absent.
    Like Cog, the name is compared as written (extras included) and `>=2.0` yields "2.0"."""
    for line in requirements:
        match = _PACKAGE_NAME.match(line)
        if line.startswith(("-", "/")) or not match or match.group(1) != name:
            continue
        found = [m.group(1) for m in _SPECIFIER_VERSION.finditer(line)]
        if url := _URL_VERSION.search(line):
            found.append(url.group(1))
        return found[0] if found else ""
    return None


def cudas_for_torch(torch: str) -> list[str]:
    """CUDA versions the matrix lists for a torch version, sorted as strings (as Cog does);
    `2.0.1+cu118` names one outright when the matrix has it."""
    if not torch:
        raise OciasmError("torch version must be specified when using CUDA")
    rows = compat.torch_rows()
    if m := _TORCH_CUDA.search(torch):
        wanted = f"{m.group(1)[:-1]}.{m.group(1)[-1]}"
        base = torch.split("+", 1)[0]
        if any(r.cuda == wanted and version.matches(base, r.torch_version) for r in rows):
            return [wanted]
        torch = base
    return sorted(r.cuda for r in rows if r.cuda is not None and version.matches(torch, r.torch_version))


def tf_cuda(tf: str) -> tuple[str, str]:
    """(CUDA, cuDNN) of a TensorFlow release; ("", "") when the matrix does not know it."""
    for row in compat.tf_rows():
        if row.tf == tf:
            return row.cuda, row.cudnn
    return "", ""


def compatible_cudnns(cuda: str) -> list[str]:
    """cuDNN majors with an image for `cuda` ("12.4" matches 12.4.1), newest first."""
    found = {i.cudnn for i in compat.cuda_images() if version.matches(cuda, i.cuda)}
    return sorted(found, key=version.sort_key, reverse=True)


def latest_cudnn(cuda: str) -> str:
    if not (found := compatible_cudnns(cuda)):
        raise OciasmError(f"CUDA {cuda} is not supported by Cog")
    return found[0]


def _latest(cudas: list[str]) -> str:
    latest = cudas[0]
    for cuda in cudas[1:]:
        if version.greater(cuda, latest):
            latest = cuda
    return latest


@dataclass(frozen=True)
class Cuda:
    cuda: str
    cudnn: str


def resolve_cuda(cuda: str | None, cudnn: str | None, torch: str | None, tf: str | None,
                 warn: Callable[[str], None]) -> Cuda:
    """Cog's validateAndCompleteCUDA for a `gpu: true` build. `torch` / `tf` are the pins read
    from the requirements (None: not required; "": required without a version)."""
    cuda, cudnn = cuda or "", cudnn or ""
    if cuda and cudnn and cudnn not in compatible_cudnns(cuda):
        raise OciasmError(f"the specified CUDA version {cuda} is not compatible with CuDNN {cudnn}; "
                          f"compatible CuDNN versions are: {','.join(compatible_cudnns(cuda))}")
    torch_cudas = cudas_for_torch(torch) if torch is not None else []
    if tf is not None:
        tf_cu, tf_cudnn = tf_cuda(tf)
        if not cuda:
            if not tf_cudnn:
                raise OciasmError(f"cog doesn't know what CUDA version is compatible with tensorflow=={tf}; "
                                  "set build.cuda in cog.yaml (see https://www.tensorflow.org/install/source)")
            cuda = tf_cu
        elif not tf_cu or not version.equal_minor(tf_cu, cuda):
            # Cog's condition is inverted here (it warns when they agree); warn when they differ.
            warn(f"Cog doesn't know if CUDA {cuda} is compatible with Tensorflow {tf}. This might cause "
                 f"CUDA problems." + (f" Try {tf_cu} instead?" if tf_cu else ""))
        if not cudnn and tf_cudnn:
            cudnn = tf_cudnn
        elif not cudnn:
            cudnn = latest_cudnn(cuda)
        elif tf_cudnn != cudnn:
            raise OciasmError(f"the specified cuDNN version {cudnn} is not compatible with tensorflow=={tf}; "
                              f"compatible cuDNN version is: {tf_cudnn}")
    elif torch is not None:
        if not cuda:
            if not torch_cudas:
                raise OciasmError(f"cog doesn't know what CUDA version is compatible with torch=={torch}; "
                                  "set build.cuda in cog.yaml (see https://pytorch.org/)")
            cuda = _latest(torch_cudas)
        elif not any(version.equal_minor(c, cuda) for c in torch_cudas):
            warn(f"Cog doesn't know if CUDA {cuda} is compatible with PyTorch {torch}. This might cause "
                 f"CUDA problems." + (f" Try {torch_cudas[-1]} instead?" if torch_cudas else ""))
        cudnn = cudnn or latest_cudnn(cuda)
    else:
        cuda = cuda or DEFAULT_CUDA
        cudnn = cudnn or latest_cudnn(cuda)
    return Cuda(cuda, cudnn)


def cuda_base_image(cuda: str, cudnn: str) -> str:
    """`nvidia/cuda:<tag>`: highest CUDA patch matching `cuda` with this cuDNN, then highest Ubuntu."""
    images = [i for i in compat.cuda_images() if version.matches(cuda, i.cuda) and i.cudnn == cudnn]
    if not images:
        raise OciasmError(f"no matching base image for CUDA {cuda} and CuDNN {cudnn}")
    return max(images, key=lambda i: (version.sort_key(i.cuda), i.ubuntu)).reference


# --------------------------------------------------------------------------- requirements


@dataclass(frozen=True)
class Wheel:
    requirement: str          # "torch==2.3.1"
    index: str = ""           # --extra-index-url value, when the matrix names one
    find_links: str = ""


def _gpu_row(cuda: str, accept: Callable[[compat.TorchRow], bool],
             version_of: Callable[[compat.TorchRow], str]) -> compat.TorchRow | None:
    """The accepted row with the highest CUDA not above the build's; between equal CUDAs, the
    higher `version_of` (Cog's torch tie-break; torchvision rows are accepted on an exact
    version, so for them the first row stays, as Cog's torchvisionGPUPackage keeps it)."""
    best: compat.TorchRow | None = None
    for row in compat.torch_rows():
        if row.cuda is None or not accept(row) or version.greater(row.cuda, cuda):
            continue
        if best is None or version.greater(row.cuda, best.cuda or "") or \
                (row.cuda == best.cuda and version.greater(version_of(row), version_of(best))):
            best = row
    return best


def _torch_gpu(ver: str, cuda: str) -> Wheel:
    best = _gpu_row(cuda, lambda row: version.matches(row.torch_version, ver), lambda row: row.torch_version)
    if best is None:
        return Wheel(f"torch=={ver}")
    return Wheel(f"torch=={best.torch_version}", best.extra_index_url, best.find_links)


def _cpu_row(accept: Callable[[compat.TorchRow], bool]) -> compat.TorchRow | None:
    """The first CPU row accepted; older releases have none (then PyPI's default build)."""
    return next((row for row in compat.torch_rows() if row.cuda is None and accept(row)), None)


def _torch_cpu(ver: str) -> Wheel:
    row = _cpu_row(lambda row: row.torch_version == ver)
    return Wheel(f"torch=={row.torch_version}", row.extra_index_url, row.find_links) if row \
        else Wheel(f"torch=={ver}")


def _torchvision_gpu(ver: str, cuda: str, warn: Callable[[str], None]) -> Wheel:
    best = _gpu_row(cuda, lambda row: row.torchvision_version == ver, lambda row: row.torchvision_version)
    if best is None:
        warn(f"Cog doesn't know if CUDA {cuda} is compatible with torchvision {ver}. This might cause CUDA problems.")
        return Wheel(f"torchvision=={ver}")
    return Wheel(f"torchvision=={best.torchvision_version}", best.extra_index_url, best.find_links)


def _torchvision_cpu(ver: str) -> Wheel:
    # Cog keeps torchvision's +cpu suffix here (and strips torch's): so do we.
    row = _cpu_row(lambda row: row.torchvision_version == ver)
    return Wheel(f"torchvision=={row.torchvision}", row.extra_index_url, row.find_links) if row \
        else Wheel(f"torchvision=={ver}")


def _tensorflow_gpu(ver: str, cuda: str) -> Wheel:
    for row in compat.tf_rows():
        if row.tf == ver and version.equal(row.cuda, cuda):
            return Wheel(row.gpu_package)
    # Cog drops the line here (an empty requirement); keeping the pin installs what was asked.
    return Wheel(f"tensorflow=={ver}")


def _wheel(line: str, gpu: bool, cuda: str, warn: Callable[[str], None]) -> Wheel | None:
    pinned = _PINNED.search(line)
    if pinned is None:
        return None
    name, ver = pinned.groups()
    if name == "torch":
        return _torch_gpu(ver, cuda) if gpu else _torch_cpu(ver)
    if name == "torchvision":
        return _torchvision_gpu(ver, cuda, warn) if gpu else _torchvision_cpu(ver)
    if name == "tensorflow" and gpu:
        return _tensorflow_gpu(ver, cuda)
    return None


def _user_picked_torch_index(requirements: list[str]) -> bool:
    """Cog keeps a torch line with its own index untouched. ociasm's requirement lines carry index
    options on lines of their own, so a PyTorch index anywhere counts as the user's choice."""
    return any(line.startswith(_INDEX_OPTIONS) and "download.pytorch.org" in line for line in requirements)


@dataclass(frozen=True)
class Requirements:
    lines: list[str]          # what the deps layer installs: index options first, as Cog writes them
    indexes: list[str]        # the index / find-links lines the matrix added


def rewrite_requirements(requirements: list[str], gpu: bool, cuda: str,
                         warn: Callable[[str], None]) -> Requirements:
    """Pinned torch / torchvision (and tensorflow on GPU) turned into the matrix's wheels."""
    if _user_picked_torch_index(requirements):
        return Requirements(list(requirements), [])
    lines, added = [], []
    for line in requirements:
        wheel = None if line.startswith(("-", "/")) else _wheel(line, gpu, cuda, warn)
        if wheel is None:
            lines.append(line)
            continue
        lines.append(wheel.requirement)
        for option in ((f"--find-links {wheel.find_links}" if wheel.find_links else ""),
                       (f"--extra-index-url {wheel.index}" if wheel.index else "")):
            if option and option not in added and option not in requirements:
                added.append(option)
    return Requirements(added + lines, added)
