"""scripts/refresh-compat-data.py: the parsers that read the upstream pages Cog's generator reads,
on small pages written here in the shapes those sites serve (the hosts are unreachable here)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "refresh-compat-data.py"
_spec = importlib.util.spec_from_file_location("refresh_compat_data", SCRIPT)
refresh = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(refresh)

TF_PAGE = """<h4 id="cpu">CPU</h4><table><tr><th>Version</th></tr>
<tr><td>tensorflow-2.15.0</td><td>3.9-3.11</td><td>Clang 16</td><td>Bazel 6.1.0</td></tr></table>
<h4 id="gpu">GPU</h4><table>
<tr><th>Version</th><th>Python version</th><th>Compiler</th><th>Build tools</th><th>cuDNN</th><th>CUDA</th></tr>
<tr><td>tensorflow-2.16.1</td><td>3.9-3.12</td><td>Clang 17.0.6</td><td>Bazel 6.5.0</td><td>8.9</td><td>12.3</td></tr>
<tr><td>tensorflow-2.15.0</td><td>3.9-3.11</td><td>Clang 16.0.0</td><td>Bazel 6.1.0</td><td>8.9</td><td>12.2</td></tr>
<tr><td>tensorflow_gpu-2.3.0</td><td>3.5-3.8</td><td>GCC 7.3.1</td><td>Bazel 3.1.0</td><td>7.6</td><td>10.1</td></tr>
</table><h4 id="macos">macOS</h4>"""

PREVIOUS = """# ROCM 5.2 (Linux only)
pip install torch==1.13.1+rocm5.2 torchvision==0.14.1+rocm5.2 --extra-index-url https://download.pytorch.org/whl/rocm5.2
# CUDA 11.6
pip install torch==1.13.1+cu116 torchvision==0.14.1+cu116 torchaudio==0.13.1 --extra-index-url https://download.pytorch.org/whl/cu116
# CUDA 12.1
pip install torch==2.3.1 torchvision==0.18.1 torchaudio==2.3.1 --index-url https://download.pytorch.org/whl/cu121
# CPU only
pip install torch==2.3.1 torchvision==0.18.1 torchaudio==2.3.1 --index-url https://download.pytorch.org/whl/cpu
# CUDA 10.1
pip install torch==1.7.0+cu101 torchvision==0.8.0+cu101 -f https://download.pytorch.org/whl/torch_stable.html"""

INDEX = """<html><body>
<a href="/whl/cu121/torch-2.3.1%2Bcu121-cp311-cp311-linux_x86_64.whl">torch-2.3.1+cu121-cp311-cp311-linux_x86_64.whl</a>
<a href="#">torch-2.3.1%2Bcu121-cp39-cp39-linux_x86_64.whl</a>
<a href="#">torch-2.3.1+cu121-cp312-cp312-win_amd64.whl</a>
<a href="#">torch-2.3.1+rocm6.0-cp311-cp311-linux_x86_64.whl</a>
<a href="#">torch-2.3.1-cp312-cp312-manylinux1_x86_64.whl</a>
<a href="#">torch-2.3.1+cpu.cxx11.abi-cp311-cp311-linux_x86_64.whl</a>
</body></html>"""


def test_tensorflow_gpu_table() -> None:
    rows = refresh.parse_tf_table(TF_PAGE)
    assert rows == [
        {"TF": "2.16.1", "TFCPUPackage": "tensorflow==2.16.1", "TFGPUPackage": "tensorflow==2.16.1",
         "CUDA": "12.3", "CuDNN": "8.9", "Pythons": ["3.9", "3.10", "3.11", "3.12"]},
        {"TF": "2.15.0", "TFCPUPackage": "tensorflow==2.15.0", "TFGPUPackage": "tensorflow==2.15.0",
         "CUDA": "12.2", "CuDNN": "8.9", "Pythons": ["3.9", "3.10", "3.11"]},
    ]  # CUDA 10.1 is below Cog's minimum


def test_previous_versions_sections() -> None:
    rows = refresh.parse_previous_versions(PREVIOUS)
    assert [(r["Torch"], r["Torchvision"], r["CUDA"], r["ExtraIndexURL"], r["FindLinks"]) for r in rows] == [
        ("1.13.1+cu116", "0.14.1+cu116", "11.6", "https://download.pytorch.org/whl/cu116/", ""),
        ("2.3.1+cu121", "0.18.1", "12.1", "https://download.pytorch.org/whl/cu121/", ""),
        ("2.3.1+cpu", "0.18.1", None, "https://download.pytorch.org/whl/cpu/", ""),
        ("1.7.0+cu101", "0.8.1+cu101", "10.1", "", "https://download.pytorch.org/whl/torch_stable.html"),
    ]


def test_wheel_index_keeps_linux_cpython_cuda_and_cpu_wheels() -> None:
    wheels = refresh.parse_wheels(INDEX)
    assert wheels == [
        {"name": "2.3.1+cu121", "version": "2.3.1", "variant": "cu121", "cuda": "12.1", "python": "3.11"},
        {"name": "2.3.1", "version": "2.3.1", "variant": "", "cuda": None, "python": "3.12"},
    ]


def test_python_ranges() -> None:
    assert refresh.python_range("3.9-3.11, 3.12") == ["3.9", "3.10", "3.11", "3.12"]


def test_writes_data_and_provenance_only_after_fetching(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refresh, "generate_tf", lambda: [{"TF": "9.9.9"}])
    assert refresh.main(["--generate", "--only", "tf", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "tf_compatibility.json").read_text()) == [{"TF": "9.9.9"}]
    assert "tensorflow.org" in json.loads((tmp_path / "sources.json").read_text())["tf_compatibility.json"]["from"]
