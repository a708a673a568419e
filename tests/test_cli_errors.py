"""Bad local input: one line naming the file and field, exit 2, nothing at the output path.

These fail before any network or disk work, so they need no registry or engine.
"""

import re
from pathlib import Path

import pytest

from clirun import run_ociasm, single_error

PREDICT = "from cog import BasePredictor\n\nclass Predictor(BasePredictor):\n    def predict(self) -> str:\n        return 'x'\n"


CASES = [
    ("malformed YAML", "build:\n  python_version: '3.11'\npredict: [unclosed\n", r"^error: cog\.yaml:\d: invalid YAML"),
    ("missing predict file", "build:\n  python_version: '3.11'\npredict: nothere.py:Predictor\n",
     r"^error: cog\.yaml:3: .*nothere\.py"),
    ("predict without colon", "build:\n  python_version: '3.11'\npredict: predict.Predictor\n",
     r"^error: cog\.yaml:3: .*predict\.Predictor"),
    ("python 3.9", "build:\n  python_version: '3.9'\npredict: predict.py:Predictor\n",
     r'^error: cog\.yaml:2: invalid build\.python_version "3\.9": minimum supported Python version is 3\.10'),
]


@pytest.mark.parametrize("name,cog_yaml,message", CASES, ids=[c[0] for c in CASES])
def test_bad_config_is_one_line_exit_2(tmp_path: Path, name: str, cog_yaml: str, message: str) -> None:
    (tmp_path / "cog.yaml").write_text(cog_yaml)
    (tmp_path / "predict.py").write_text(PREDICT)
    out = tmp_path / "out.tar"
    proc = run_ociasm("build", ".", "--output", f"oci-archive:{out}", cwd=tmp_path)
    assert re.search(message, single_error(proc))
    assert not out.exists() and not list(tmp_path.glob("out.tar*"))


def test_bad_output_spec(tmp_path: Path) -> None:
    (tmp_path / "cog.yaml").write_text("build:\n  python_version: '3.11'\npredict: predict.py:Predictor\n")
    (tmp_path / "predict.py").write_text(PREDICT)
    proc = run_ociasm("build", ".", "--output", "tarball:x", cwd=tmp_path)
    assert single_error(proc).startswith("error: unknown --output 'tarball:x'")


def test_bad_secret_never_echoes_its_value(tmp_path: Path) -> None:
    (tmp_path / "cog.yaml").write_text("build:\n  python_version: '3.11'\npredict: predict.py:Predictor\n")
    (tmp_path / "predict.py").write_text(PREDICT)
    proc = run_ociasm("build", ".", "--secret", "id=tok,value=hunter2", cwd=tmp_path)
    assert single_error(proc).startswith("error: --secret id=…,value=…: expected")
    assert "hunter2" not in proc.stderr + proc.stdout
