"""Every case in schema_cases.py against its golden file (tests/schema/golden/<case>.json).

Regenerate with OCIASM_UPDATE_GOLDEN=1, then read each changed golden against
Cog's rules before keeping it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from schema_cases import CASES, Case
from ociasm.errors import OciasmError
from ociasm.schema import generate_schema

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("OCIASM_UPDATE_GOLDEN") == "1"
# Identical in every document; checked in full in the FULL cases and test_schema_rules.py.
FIXED = {"PredictionRequest", "PredictionResponse", "TrainingRequest", "TrainingResponse", "Status", "HTTPValidationError", "ValidationError"}
FULL = {"static_schema_gen", "predict_and_train"}


def write_project(root: Path, case: Case) -> None:
    (root / "predict.py").write_text(case.source)
    for rel, text in case.files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def summary(case: Case, root: Path) -> dict:
    try:
        result = generate_schema(root, case.predict, case.train)
    except OciasmError as e:
        return {"error": str(e)}
    doc = result.document
    out = {
        "max_concurrency": result.max_concurrency,
        "streaming": doc["paths"].get("/predictions", {}).get("post", {}).get("x-cog-streaming", False),
        "paths": sorted(doc["paths"]),
        "schemas": {k: v for k, v in doc["components"]["schemas"].items() if k not in FIXED},
    }
    if case.name in FULL:
        out["document"] = doc
    return out


def test_table_is_large_enough():
    assert len(CASES) >= 40
    assert sum(1 for c in CASES if c.name.startswith("err_")) >= 15


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_golden(case: Case, tmp_path: Path):
    write_project(tmp_path, case)
    got = summary(case, tmp_path)
    path = GOLDEN / f"{case.name}.json"
    if UPDATE:
        path.write_text(json.dumps(got, indent=2) + "\n")
    assert path.exists(), f"no golden for {case.name}; run with OCIASM_UPDATE_GOLDEN=1 and review it"
    assert got == json.loads(path.read_text())
    # Key order of the Input properties is the signature order (x-order 0, 1, ...).
    if "schemas" in got:
        for key in ("Input", "TrainingInput"):
            props = got["schemas"].get(key, {}).get("properties", {})
            assert [p["x-order"] for p in props.values()] == list(range(len(props)))
