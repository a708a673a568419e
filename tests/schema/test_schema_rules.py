"""Rules checked directly (not through goldens): Cog's exact expectations, cross-file
resolution, error locations, and loading a user-supplied schema file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ociasm.errors import OciasmError
from ociasm.schema import generate_schema, load_schema_file, schema_override


def project(tmp_path: Path, **files: str) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def schemas(root: Path, ref: str = "predict.py:Predictor", train: str | None = None) -> dict:
    return generate_schema(root, ref, train).document["components"]["schemas"]


def test_nullable_union_without_default_is_required_cog_shape(tmp_path):
    # Cog: TestUnionInputNullableWithoutDefaultOpenAPI
    root = project(tmp_path, **{"predict.py": "class Predictor:\n    def predict(self, value: str | float | None) -> str:\n        return 'ok'\n"})
    inp = schemas(root)["Input"]
    assert inp["required"] == ["value"]
    assert inp["properties"]["value"]["nullable"] is True
    assert inp["properties"]["value"]["anyOf"] == [{"nullable": True, "type": "string"}, {"nullable": True, "type": "number"}]


def test_never_imports_user_code(tmp_path):
    marker = tmp_path / "imported"
    source = f"open({str(marker)!r}, 'w').close()\nraise SystemExit(3)\n\ndef run(x: int) -> int:\n    return x\n"
    root = project(tmp_path, **{"predict.py": source})
    assert schemas(root, "predict.py:run")["Input"]["required"] == ["x"]
    assert not marker.exists()


def test_relative_import_in_package_and_imported_base_class(tmp_path):
    root = project(
        tmp_path,
        **{
            "pkg__types.py": "from pydantic import BaseModel\n\nclass Out(BaseModel):\n    text: str\n",
            "pkg__base.py": "from cog import BasePredictor\nfrom .types import Out\n\nclass Base(BasePredictor):\n    def run(self, n: int) -> Out:\n        pass\n",
            "pkg__predict.py": "from .base import Base\n\nclass Predictor(Base):\n    pass\n",
        },
    )
    got = schemas(root, "pkg/predict.py:Predictor")
    assert got["Output"]["properties"]["text"] == {"type": "string", "title": "Text"}
    assert got["Input"]["properties"]["n"]["type"] == "integer"


def test_qualified_module_import_of_typeddict(tmp_path):
    # Cog: TestQualifiedTypedDictImportInputAndOutput
    root = project(
        tmp_path,
        **{
            "output_types.py": "from typing import TypedDict\n\nclass Payload(TypedDict):\n    name: str\n\nclass Output(TypedDict):\n    text: str\n",
            "predict.py": "import output_types as ot\nfrom cog import BasePredictor\n\nclass Predictor(BasePredictor):\n    def predict(self, data: ot.Payload) -> ot.Output:\n        pass\n",
        },
    )
    got = schemas(root)
    assert got["Input"]["properties"]["data"]["type"] == "object"
    assert got["Output"]["required"] == ["text"]


def test_error_inside_imported_model_names_that_file(tmp_path):
    root = project(
        tmp_path,
        **{
            "models.py": "from pydantic import BaseModel\nimport numpy as np\n\nclass Out(BaseModel):\n    arr: np.ndarray\n",
            "predict.py": "from models import Out\n\ndef run(x: int) -> Out:\n    pass\n",
        },
    )
    with pytest.raises(OciasmError, match=r"^models\.py:5: run\(\) output: field 'arr' of Out: cannot resolve type 'ndarray' \(imported from 'numpy'\)"):
        generate_schema(root, "predict.py:run", None)


def test_secret_none_and_seed_none_required_lists(tmp_path):
    # Cog: static_schema_secret_optional.txtar pins required == [prompt, api_key_required, seed]
    src = (
        "from cog import BasePredictor, Input, Secret\n\nclass Predictor(BasePredictor):\n"
        "    def predict(self, prompt: str = Input(), api_key: Secret = Input(default=None),\n"
        "                api_key_required: Secret = Input(), seed: int = Input(default=None)) -> str:\n        pass\n"
    )
    inp = schemas(project(tmp_path, **{"predict.py": src}))["Input"]
    assert inp["required"] == ["prompt", "api_key_required", "seed"]
    assert inp["properties"]["api_key"]["default"] is None and inp["properties"]["api_key"]["nullable"] is True
    assert "default" not in inp["properties"]["seed"]


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("../predict.py:Predictor", "points outside the project directory"),
        ("missing.py:Predictor", r"^missing\.py: cannot read the predictor file"),
        ("predict.py:", "is not of the form file.py:ClassName"),
    ],
)
def test_bad_references(tmp_path, ref, message):
    root = project(tmp_path, **{"predict.py": "def run() -> str:\n    pass\n"})
    with pytest.raises(OciasmError, match=message):
        generate_schema(root, ref, None)


def test_nothing_to_generate(tmp_path):
    with pytest.raises(OciasmError, match="neither `predict` nor `train`"):
        generate_schema(tmp_path, None, None)


def test_document_is_json_and_version_is_passed_through(tmp_path):
    root = project(tmp_path, **{"predict.py": "def run(x: float = 1.0) -> str:\n    pass\n"})
    doc = generate_schema(root, "predict.py:run", None, version="0.17.1").document
    assert doc["info"] == {"title": "Cog", "version": "0.17.1"}
    default = doc["components"]["schemas"]["Input"]["properties"]["x"]["default"]
    assert json.dumps(default) == "1"  # Go writes integral floats without ".0"


# -- load_schema_file / schema_override ---------------------------------------------------


def test_load_schema_file_accepts_a_generated_document(tmp_path):
    root = project(tmp_path, **{"predict.py": "def run(x: int) -> int:\n    pass\n"})
    doc = generate_schema(root, "predict.py:run", None).document
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(doc))
    assert load_schema_file(path) == doc


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"swagger": "2.0"}', "not an OpenAPI 3 document"),
        ('{"openapi": "3.0.2", "components": {"schemas": {"Output": {}}}}', "no components.schemas.Input"),
        ('["openapi"]', "not an OpenAPI 3 document"),
    ],
)
def test_load_schema_file_rejects(tmp_path, content, message):
    path = tmp_path / "schema.json"
    path.write_text(content)
    with pytest.raises(OciasmError, match=message):
        load_schema_file(path)


def test_load_schema_file_missing(tmp_path):
    with pytest.raises(OciasmError, match="cannot read the OpenAPI schema file"):
        load_schema_file(tmp_path / "nope.json")


def test_schema_override_prefers_flag_over_env(monkeypatch, tmp_path):
    monkeypatch.delenv("COG_OPENAPI_SCHEMA", raising=False)
    assert schema_override(None) is None
    monkeypatch.setenv("COG_OPENAPI_SCHEMA", "/env/schema.json")
    assert schema_override(None) == Path("/env/schema.json")
    assert schema_override(tmp_path / "flag.json") == tmp_path / "flag.json"
