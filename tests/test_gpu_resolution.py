"""GPU resolution against Cog's data and Cog's own test cases (pkg/config/config_test.go,
compatibility_test.go, pkg/dockerfile/base_test.go): CUDA / cuDNN, the nvidia/cuda tag, the torch
wheel index, cog-base tags, and Cog's errors. Pure functions: no network, no registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from ociasm import gpu
from ociasm.config import load_config
from ociasm.errors import OciasmError
from ociasm.gpu import cogbase, compat, version
from ociasm.gpu.choice import base_options
from ociasm.gpu.resolve import (cuda_base_image, cudas_for_torch, latest_cudnn, package_version,
                                resolve_cuda, rewrite_requirements)

CU = "--extra-index-url https://download.pytorch.org/whl/cu{}/"
CPU = "--extra-index-url https://download.pytorch.org/whl/cpu/"


def _resolve(requirements: list[str], cuda: str | None = None, cudnn: str | None = None,
             warnings: list[str] | None = None):
    warn = (warnings if warnings is not None else []).append
    torch, tf = package_version(requirements, "torch"), package_version(requirements, "tensorflow")
    found = resolve_cuda(cuda, cudnn, torch, tf, warn)
    rewritten = rewrite_requirements(requirements, True, found.cuda, warn)
    return found.cuda, found.cudnn, cuda_base_image(found.cuda, found.cudnn), rewritten.lines


# (requirements, cuda, cudnn) -> (cuda, cudnn, nvidia/cuda image, requirement lines as installed)
GPU_CASES = [
    (["torch==2.3.1"], None, None,
     ("12.1", "8", "nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04", [CU.format(121), "torch==2.3.1"])),
    (["torch==2.3"], None, None,  # normalised to the newest 2.3.x the matrix lists
     ("12.1", "8", "nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04", [CU.format(121), "torch==2.3.1"])),
    (["torch==2.5.1"], None, None,
     ("12.4", "9", "nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04", [CU.format(124), "torch==2.5.1"])),
    (["torch==2.7.1"], None, None,
     ("12.8", "9", "nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04", [CU.format(128), "torch==2.7.1"])),
    (["torch==2.0.1"], None, None,  # Cog: TestValidateAndCompleteCUDAForSelectedTorch
     ("11.8", "8", "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04", [CU.format(118), "torch==2.0.1"])),
    (["torch==1.13.1", "torchvision==0.14.1", "torchaudio==0.13.1"], None, None,  # Cog: ...AndCudaVersions
     ("11.7", "8", "nvidia/cuda:11.7.1-cudnn8-devel-ubuntu22.04",
      [CU.format(117), "torch==1.13.1", "torchvision==0.14.1", "torchaudio==0.13.1"])),
    (["torch==1.12.1", "torchvision==0.13.1", "torchaudio==0.12.1"], None, None,  # Cog: ...WithExtraIndexURL
     ("11.6", "8", "nvidia/cuda:11.6.2-cudnn8-devel-ubuntu20.04",
      [CU.format(116), "torch==1.12.1", "torchvision==0.13.1", "torchaudio==0.12.1"])),
    (["torch==1.11.0"], None, None,  # cu102 has no base image: dropped from the matrix
     ("11.3", "8", "nvidia/cuda:11.3.1-cudnn8-devel-ubuntu20.04", [CU.format(113), "torch==1.11.0"])),
    (["torch==2.0.1+cu118"], None, None,
     ("11.8", "8", "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04", [CU.format(118), "torch==2.0.1"])),
    (["torch==2.4.1"], "12.1", None,  # an explicit CUDA picks that wheel
     ("12.1", "8", "nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04", [CU.format(121), "torch==2.4.1"])),
    (["torch==2.0.1", "torchvision==0.15.2", "torchaudio==2.0.2"], "11.8", None,  # Cog: ...ArchTorchGPU
     ("11.8", "8", "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04",
      [CU.format(118), "torch==2.0.1", "torchvision==0.15.2", "torchaudio==2.0.2"])),
    (["torch==2.10.0"], None, None,
     ("13.0", "9", "nvidia/cuda:13.0.3-cudnn-devel-ubuntu24.04", [CU.format(130), "torch==2.10.0"])),
    (["tensorflow==2.15.0"], None, None,
     ("12.2", "8", "nvidia/cuda:12.2.2-cudnn8-devel-ubuntu22.04", ["tensorflow==2.15.0"])),
    (["tensorflow==2.12.0"], None, None,  # Cog: TestCUDABaseImageTag
     ("11.8", "8", "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04", ["tensorflow==2.12.0"])),
    (["tensorflow==2.18.0"], None, None,
     ("12.5", "9", "nvidia/cuda:12.5.1-cudnn-devel-ubuntu22.04", ["tensorflow==2.18.0"])),
    ([], None, None, ("11.8", "8", "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04", [])),
    (["numpy==1.26.4"], None, None, ("11.8", "8", "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04", ["numpy==1.26.4"])),
    ([], "11.6", "8", ("11.6", "8", "nvidia/cuda:11.6.2-cudnn8-devel-ubuntu20.04", [])),  # Cog: ...ExplicitMinorCUDA
    ([], "12.4", None, ("12.4", "9", "nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04", [])),
    ([], "12.1.0", None, ("12.1.0", "8", "nvidia/cuda:12.1.0-cudnn8-devel-ubuntu22.04", [])),  # a patch pins it
    (["torch==0.4.1"], "11.8", None,  # Cog: TestUnsupportedTorch, with cuda set
     ("11.8", "8", "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04", ["torch==0.4.1"])),
    (["tensorflow==0.4.1"], "11.8", None,  # Cog: TestUnsupportedTensorflow, with cuda set
     ("11.8", "8", "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04", ["tensorflow==0.4.1"])),
    (["torch>=2.0"], None, None,  # Cog reads the first version a specifier names; the line stays as written
     ("11.8", "8", "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04", ["torch>=2.0"])),
]


@pytest.mark.parametrize("requirements, cuda, cudnn, expected", GPU_CASES, ids=lambda v: str(v))
def test_gpu_resolution_matches_cog(requirements, cuda, cudnn, expected) -> None:
    assert _resolve(requirements, cuda, cudnn) == expected


def test_torch_and_tensorflow_together_take_tensorflows_cudnn() -> None:
    # Cog: TestPythonPackagesBothTorchAndTensorflow (CUDA 12.3 given; TF 2.16.1 says cuDNN 8).
    reqs = ["tensorflow==2.16.1", "torch==2.3.1"]
    found = resolve_cuda("12.3", None, "2.3.1", "2.16.1", [].append)
    assert (found.cuda, found.cudnn) == ("12.3", "8")
    assert rewrite_requirements(reqs, True, found.cuda, [].append).lines == [
        CU.format(121), "tensorflow==2.16.1", "torch==2.3.1"]
    with pytest.raises(OciasmError, match="^no matching base image for CUDA 12.3 and CuDNN 8$"):
        cuda_base_image(found.cuda, found.cudnn)


ERROR_CASES = [
    (["torch"], None, None, "torch version must be specified when using CUDA"),
    (["torch==0.4.1"], None, None, "cog doesn't know what CUDA version is compatible with torch==0.4.1"),
    (["tensorflow==0.4.1"], None, None, "cog doesn't know what CUDA version is compatible with tensorflow==0.4.1"),
    ([], "11.8", "9", "the specified CUDA version 11.8 is not compatible with CuDNN 9; compatible CuDNN versions are: 8"),
    (["tensorflow==2.15.0"], None, "9", "the specified cuDNN version 9 is not compatible with tensorflow==2.15.0; "
                                        "compatible cuDNN version is: 8"),
    ([], "12.7", None, "CUDA 12.7 is not supported by Cog"),
]


@pytest.mark.parametrize("requirements, cuda, cudnn, message", ERROR_CASES, ids=lambda v: str(v))
def test_gpu_resolution_errors_match_cog(requirements, cuda, cudnn, message) -> None:
    with pytest.raises(OciasmError) as info:
        _resolve(requirements, cuda, cudnn)
    assert str(info.value).startswith(message)


def test_unknown_cuda_for_torch_warns_as_cog_does() -> None:
    warnings: list[str] = []
    assert _resolve(["torch==2.3.1"], "12.4", None, warnings)[:2] == ("12.4", "9")
    assert warnings == ["Cog doesn't know if CUDA 12.4 is compatible with PyTorch 2.3.1. This might cause CUDA "
                        "problems. Try 12.1 instead?"]


@pytest.mark.parametrize("requirements, expected", [
    (["torch==2.0.1", "torchvision==0.15.2", "torchaudio==2.0.2"],  # Cog: TestPythonPackagesForArchTorchCPU
     [CPU, "torch==2.0.1", "torchvision==0.15.2", "torchaudio==2.0.2"]),
    (["torch==2.3.1"], [CPU, "torch==2.3.1"]),
    (["torch==2.3"], ["torch==2.3"]),            # the CPU row must match exactly: PyPI's default
    (["torch==1.10.0"], ["torch==1.10.0"]),      # no CPU row: PyPI's default
    (["tensorflow==2.15.0"], ["tensorflow==2.15.0"]),
])
def test_cpu_torch_uses_the_cpu_index(requirements, expected) -> None:
    assert rewrite_requirements(requirements, False, "", [].append).lines == expected


def test_a_pytorch_index_the_user_gave_wins() -> None:
    reqs = ["--extra-index-url https://download.pytorch.org/whl/cu118", "torch==2.7.0"]
    assert rewrite_requirements(reqs, True, "12.8", [].append).lines == reqs


def test_local_artifacts_and_options_are_left_alone() -> None:
    reqs = ["--find-links /proj/wheels", "/proj/torch-2.3.1-cp311-none-any.whl"]
    assert package_version(reqs, "torch") is None
    assert rewrite_requirements(reqs, True, "12.1", [].append).lines == reqs


# --------------------------------------------------------------------------- the whole matrix (as Cog tests it)


@pytest.mark.parametrize("row", compat.tf_rows(), ids=lambda r: r.tf)
def test_every_tensorflow_row_resolves(row) -> None:
    found = resolve_cuda(None, None, None, row.tf, [].append)
    assert version.equal_minor(found.cuda, row.cuda) and found.cudnn == row.cudnn


def test_every_torch_row_resolves() -> None:
    for row in compat.torch_rows():
        if row.cuda is not None:
            found = resolve_cuda(None, None, row.torch_version, None, [].append)
            assert found.cuda and found.cudnn, row


def test_cuda_from_torch_plus_version_and_cudnn_for_cuda() -> None:
    # Cog: TestCudasFromTorchWithCUVersionModifier, TestLatestCuDNNForCUDA
    assert cudas_for_torch("2.0.1+cu118")[0] == "11.8"
    assert latest_cudnn("11.8") == "8"
    assert cudas_for_torch("0.4.1") == []


def test_data_is_cogs_and_has_provenance() -> None:
    assert len(compat.cuda_images()) > 50 and len(compat.torch_rows()) > 50 and len(compat.tf_rows()) > 10
    assert (Path(compat.DATA_DIR) / "sources.json").is_file()


# --------------------------------------------------------------------------- Cog's version rules


@pytest.mark.parametrize("a, b, matches", [
    ("2.3", "2.3.1", True), ("2.3.1", "2.3.0", False), ("2.3.1+cu121", "2.3.1", True),
    ("12.1", "12.1.1", True), ("12", "12.0.1", True), ("x", "1.0", False),
])
def test_version_matches(a, b, matches) -> None:
    assert version.matches(a, b) is matches


# --------------------------------------------------------------------------- cog-base


@pytest.mark.parametrize("cuda, python, torch, tag", [
    ("", "3.12", "", "python3.12"),
    ("", "3.11", "", "python3.11"),
    ("11.8", "3.11", "", "cuda11.8-python3.11"),
    ("12.1", "3.11", "2.3", "cuda12.1-python3.11-torch2.3.1"),
    ("12.1", "3.11", "2.3.1", "cuda12.1-python3.11-torch2.3.1"),
    ("11.8", "3.11", "2.3.1+cu118", "cuda11.8-python3.11-torch2.3.1"),
    ("12.1", "3.11", "9.9.9", "cuda12.1-python3.11"),  # an unknown torch is dropped from the tag
    ("", "3.12", "2.3.1", "python3.12-torch2.3.1"),    # CPU torch
    ("12.4", "3.12", "2.5.1", "cuda12.4-python3.12-torch2.5.1"),
])
def test_cog_base_tags(cuda, python, torch, tag) -> None:
    found = cogbase.cog_base_for(cuda, python, torch)
    assert found is not None and found.tag == tag
    assert found.reference("r8.im") == f"r8.im/cog-base:{tag}"


@pytest.mark.parametrize("cuda, python, torch", [("", "3.9", ""), ("11.2", "3.11", ""), ("10.2", "3.10", "")])
def test_cog_base_unsupported_configurations(cuda, python, torch) -> None:
    assert cogbase.cog_base_for(cuda, python, torch) is None


def test_cog_registry_host_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COG_REGISTRY_HOST", "registry.example.com:5000")
    assert cogbase.cog_base_for("", "3.11", "").reference() == "registry.example.com:5000/cog-base:python3.11"


def _options(**kw):
    defaults = dict(gpu=True, cuda="11.8", python="3.11", torch=None,
                    cuda_tag=lambda: "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04",
                    use_cog_base_image=None, use_cuda_base_image=None)
    return base_options(**{**defaults, **kw})


def test_base_options_follow_cogs_flags() -> None:
    default = _options()
    assert (default.cog_base, default.cog_base_explicit, default.fallback, default.cuda_base) == (
        "r8.im/cog-base:cuda11.8-python3.11", False, "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04", True)
    assert _options(use_cuda_base_image="false").fallback == "python:3.11-slim"
    off = _options(use_cog_base_image=False)
    assert off.cog_base is None and off.fallback.startswith("nvidia/cuda:")
    explicit = _options(use_cog_base_image=True)
    assert explicit.cog_base_explicit and explicit.fallback == ""
    cpu = _options(gpu=False, cuda="", cuda_tag=lambda: pytest.fail("no CUDA image for a CPU build"))
    assert (cpu.cog_base, cpu.fallback) == ("r8.im/cog-base:python3.11", "python:3.11-slim")


# --------------------------------------------------------------------------- through cog.yaml


def _config(tmp_path: Path, cog_yaml: str, requirements: str = ""):
    (tmp_path / "cog.yaml").write_text(cog_yaml)
    if requirements:
        (tmp_path / "requirements.txt").write_text(requirements)
    (tmp_path / "predict.py").write_text("class Predictor: pass\n")
    return load_config(tmp_path, warn=lambda m: None)


def test_resolve_fills_cuda_for_the_label_and_names_the_field_on_error(tmp_path: Path) -> None:
    config = _config(tmp_path, 'build:\n  gpu: true\n  python_version: "3.11"\n  python_requirements: requirements.txt\n',
                     "torch==2.3.1\n")
    resolved = gpu.resolve(config, ["torch==2.3.1"], use_cog_base_image=None, use_cuda_base_image=None, warn=print)
    assert (resolved.config.build.cuda, resolved.config.build.cudnn) == ("12.1", "8")
    assert resolved.indexes == [CU.format(121)]
    assert resolved.bases.fallback == "nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04"
    assert resolved.bases.cog_base == "r8.im/cog-base:cuda12.1-python3.11-torch2.3.1"
    with pytest.raises(OciasmError, match=r"^cog\.yaml:4: torch version must be specified when using CUDA$"):
        gpu.resolve(config, ["torch"], use_cog_base_image=None, use_cuda_base_image=None, warn=print)


def test_cpu_builds_keep_their_config(tmp_path: Path) -> None:
    config = _config(tmp_path, 'build:\n  python_version: "3.11"\n')
    resolved = gpu.resolve(config, [], use_cog_base_image=False, use_cuda_base_image=None, warn=print)
    assert resolved.config == config and resolved.bases.fallback == "python:3.11-slim"


# --------------------------------------------------------------------------- the cog-base probe stays cheap


def test_unreachable_cog_base_registry_fails_fast_without_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    from ociasm.gpu import choice

    calls = []

    def connect(address, timeout):
        calls.append((address, timeout))
        raise TimeoutError()

    monkeypatch.setattr(choice.socket, "create_connection", connect)
    assert choice._reachable("r8.im") == "cannot reach registry r8.im: timed out"
    assert choice._reachable("[2001:db8::1]:5000") == "cannot reach registry [2001:db8::1]:5000: timed out"
    assert calls == [(("r8.im", 443), choice.CONNECT_TIMEOUT), (("2001:db8::1", 5000), choice.CONNECT_TIMEOUT)]
    assert choice._reachable("127.0.0.1:5000") is None  # loopback: the registry client's refusal is instant
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.com:3128")
    assert choice._reachable("r8.im") is None  # only the proxy can tell


def test_unresolvable_registry_is_reported() -> None:
    from ociasm.gpu import choice

    assert choice._reachable("cog.invalid").startswith("cannot reach registry cog.invalid: ")
