"""The OpenAPI 3.0.2 document Cog writes for a predictor or trainer, and loading one from a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import OciasmError
from .inputs import NO_DEFAULT, InputField
from .literals import to_json
from .types import PRIMITIVES, title_case

_ANY_JSON = {"application/json": {"schema": {}}}
_VALIDATION_ERROR = {
    "description": "Validation Error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
}


def build_document(inputs: list[InputField], output: dict, *, train: bool, streaming: bool, version: str) -> dict:
    """One mode's document: components, the run endpoint and its cancel endpoint."""
    kind, noun = ("Training", "trainings") if train else ("Prediction", "predictions")
    input_key, output_key = ("TrainingInput", "TrainingOutput") if train else ("Input", "Output")
    request, response = f"{kind}Request", f"{kind}Response"
    input_schema, enums = _input_schema(inputs)
    input_schema["title"] = input_key
    schemas: dict[str, Any] = {input_key: input_schema, output_key: {**output, "title": "Output"}}
    schemas.update(enums)
    schemas[request] = {
        "title": request,
        "type": "object",
        "properties": {"id": {"title": "Id", "type": "string"}, "input": {"$ref": ref(input_key)}},
    }
    schemas[response] = {
        "title": response,
        "type": "object",
        "properties": {
            "input": {"$ref": ref(input_key)},
            "output": {"$ref": ref(output_key)},
            "id": {"title": "Id", "type": "string"},
            "version": {"title": "Version", "type": "string"},
            "created_at": {"title": "Created At", "type": "string", "format": "date-time"},
            "started_at": {"title": "Started At", "type": "string", "format": "date-time"},
            "completed_at": {"title": "Completed At", "type": "string", "format": "date-time"},
            "status": {"title": "Status", "type": "string"},
            "error": {"title": "Error", "type": "string"},
            "logs": {"title": "Logs", "type": "string"},
            "metrics": {"title": "Metrics", "type": "object"},
        },
    }
    schemas["Status"] = {
        "title": "Status",
        "description": "An enumeration.",
        "enum": ["starting", "processing", "succeeded", "canceled", "failed"],
        "type": "string",
    }
    schemas["HTTPValidationError"] = {
        "title": "HTTPValidationError",
        "type": "object",
        "properties": {"detail": {"title": "Detail", "type": "array", "items": {"$ref": ref("ValidationError")}}},
    }
    schemas["ValidationError"] = {
        "title": "ValidationError",
        "required": ["loc", "msg", "type"],
        "type": "object",
        "properties": {
            "loc": {
                "title": "Location",
                "type": "array",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            },
            "msg": {"title": "Message", "type": "string"},
            "type": {"title": "Error Type", "type": "string"},
        },
    }
    operation: dict[str, Any] = {
        "summary": "Train" if train else "Predict",
        "description": f"Run a single {'training' if train else 'prediction'} on the model",
        "operationId": f"{'train' if train else 'predict'}_{noun}_post",
        "requestBody": {"content": {"application/json": {"schema": {"$ref": ref(request)}}}},
        "responses": {
            "200": {"description": "Successful Response", "content": {"application/json": {"schema": {"$ref": ref(response)}}}},
            "422": _VALIDATION_ERROR,
        },
    }
    if streaming and not train:
        operation["x-cog-streaming"] = True
    id_param = f"{noun[:-1]}_id"
    paths = {
        "/": {"get": {"summary": "Root", "operationId": "root__get", "responses": {"200": _ok()}}},
        "/health-check": {
            "get": {"summary": "Healthcheck", "operationId": "healthcheck_health_check_get", "responses": {"200": _ok()}}
        },
        f"/{noun}": {"post": operation},
        f"/{noun}/{{{id_param}}}/cancel": {
            "post": {
                "summary": "Cancel",
                "operationId": f"cancel_{noun}__{id_param}__cancel_post",
                "parameters": [
                    {"required": True, "schema": {"title": title_case(id_param), "type": "string"}, "name": id_param, "in": "path"}
                ],
                "responses": {"200": _ok(), "422": _VALIDATION_ERROR},
            }
        },
    }
    doc = {"openapi": "3.0.2", "info": {"title": "Cog", "version": version}, "paths": paths, "components": {"schemas": schemas}}
    return json.loads(json.dumps(_go_numbers(doc)))  # fresh, unshared containers


def ref(component: str) -> str:
    return f"#/components/schemas/{component}"


def merge(predict: dict, train: dict) -> dict:
    """Cog's combined document: the predict one plus the train paths and components it lacks."""
    for key, value in train["paths"].items():
        predict["paths"].setdefault(key, value)
    for key, value in train["components"]["schemas"].items():
        predict["components"]["schemas"].setdefault(key, value)
    return predict


def _ok() -> dict:
    return {"description": "Successful Response", "content": _ANY_JSON}


def _input_schema(inputs: list[InputField]) -> tuple[dict, dict[str, dict]]:
    properties: dict[str, dict] = {}
    required: list[str] = []
    enums: dict[str, dict] = {}
    for inp in inputs:
        prop: dict[str, Any] = {"x-order": inp.order}
        if inp.choices:
            # Cog names the enum component after the parameter and refers to it with allOf.
            enums[inp.name] = {
                "title": inp.name,
                "description": "An enumeration.",
                "enum": [to_json(c) for c in inp.choices],
                "type": PRIMITIVES.get(inp.type.primitive, PRIMITIVES["str"])["type"],
            }
            prop["allOf"] = [{"$ref": ref(inp.name)}]
        else:
            prop["title"] = title_case(inp.name)
            prop.update(inp.type.json())
        nullable = inp.type.nullable
        # `api_key: Secret = Input(default=None)` is Cog's idiom for an optional credential.
        if inp.type.kind == "prim" and inp.type.prim == "Secret" and inp.default is None:
            nullable = True
        # A None default on a non-nullable input (`seed: int = Input(default=None)`) is no
        # default at all: the input stays required and the predictor fills it in itself.
        has_default = inp.default is not NO_DEFAULT and not (inp.default is None and not nullable)
        if not has_default and (inp.type.kind == "union" or not inp.type.nullable):
            required.append(inp.name)
        if has_default:
            prop["default"] = to_json(inp.default)
        if nullable:
            prop["nullable"] = True
        for key, value in (
            ("description", inp.description),
            ("minimum", inp.ge),
            ("maximum", inp.le),
            ("minLength", inp.min_length),
            ("maxLength", inp.max_length),
            ("pattern", inp.regex),
        ):
            if value is not None:
                prop[key] = value
        if inp.deprecated:
            prop["deprecated"] = True
        if inp.accept is not None:
            prop["x-cog-accept"] = inp.accept
        properties[inp.name] = prop
    schema: dict[str, Any] = {"title": "Input", "type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema, enums


def _go_numbers(value: Any) -> Any:
    """Integral floats as integers, as Go's encoder writes them (1.0 -> 1)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {k: _go_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_go_numbers(v) for v in value]
    return value


def load_schema_file(path: Path) -> dict:
    """A user-supplied schema (`--openapi-schema`, COG_OPENAPI_SCHEMA), checked before use."""
    try:
        doc = json.loads(Path(path).read_bytes())
    except OSError as e:
        raise OciasmError(f"{path}: cannot read the OpenAPI schema file: {e.strerror}") from None
    except ValueError as e:
        raise OciasmError(f"{path}: the OpenAPI schema file is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3."):
        raise OciasmError(f'{path}: not an OpenAPI 3 document (expected a top-level "openapi": "3.x" field)')
    schemas = (doc.get("components") or {}).get("schemas") if isinstance(doc.get("components"), dict) else None
    if not isinstance(schemas, dict) or not isinstance(schemas.get("Input"), dict):
        raise OciasmError(f"{path}: the OpenAPI schema has no components.schemas.Input; Cog needs it to validate inputs")
    return doc
