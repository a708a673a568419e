"""Static OpenAPI schema for a Cog model: read predict.py with `ast`, never import or run it.

Follows Cog's own static generator (pkg/schema in github.com/replicate/cog): the same
target lookup, type rules, Input() keywords and document shape that coglet serves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import OciasmError
from .ann import AnnotationError, from_ast
from .inputs import extract_inputs
from .module import Project
from .openapi import build_document, load_schema_file, merge
from .target import concurrency_max, find_target, is_streaming
from .types import TypeProblem, output_schema

__all__ = ["GeneratedSchema", "generate_schema", "load_schema_file", "schema_override"]

SCHEMA_ENV = "COG_OPENAPI_SCHEMA"


@dataclass(frozen=True)
class GeneratedSchema:
    document: dict  # the OpenAPI document
    max_concurrency: int | None  # from @cog.concurrent(max=N) on the predict target, else None


def generate_schema(project_dir: Path, predict: str | None, train: str | None, *, version: str = "dev") -> GeneratedSchema:
    """The document for cog.yaml's `predict` and/or `train` (`file.py:Name`); `version` goes in info.version."""
    if not predict and not train:
        raise OciasmError("cog.yaml: neither `predict` nor `train` is set; there is nothing to build a schema for")
    project = Project(Path(project_dir))
    document, max_concurrency = None, None
    if predict:
        document, max_concurrency = _generate(project, predict, train=False, version=version)
    if train:
        train_doc, _ = _generate(project, train, train=True, version=version)
        document = merge(document, train_doc) if document is not None else train_doc
    return GeneratedSchema(document, max_concurrency)


def schema_override(cli_path: Path | None) -> Path | None:
    """The schema file that replaces generation: `--openapi-schema`, else $COG_OPENAPI_SCHEMA."""
    if cli_path is not None:
        return cli_path
    env = os.environ.get(SCHEMA_ENV)
    return Path(env) if env else None


def _generate(project: Project, ref: str, *, train: bool, version: str) -> tuple[dict, int | None]:
    key = "train" if train else "predict"
    file, sep, name = ref.partition(":")
    if not sep or not file or not name:
        raise OciasmError(f'cog.yaml: {key}: "{ref}" is not of the form file.py:ClassName or file.py:function_name')
    rel = PurePosixPath(file)
    if rel.is_absolute() or ".." in rel.parts:
        raise OciasmError(f'cog.yaml: {key}: "{ref}" points outside the project directory')
    module = project.parse(rel.as_posix())
    target = find_target(module, name, train)
    where, func = target.module, target.func
    inputs = extract_inputs(where, func)
    if func.returns is None:
        raise where.error(func, f"{func.name}() has no return type annotation; add one, e.g. `-> str`")
    try:
        output = output_schema(where, from_ast(func.returns))
    except AnnotationError as e:
        raise where.error(func.returns, f"{func.name}(): unsupported return type annotation {e}") from None
    except TypeProblem as e:
        at_module, line = e.where or (where, func.returns.lineno)
        raise at_module.error(line, f"{func.name}() output: {e}") from None
    streaming = is_streaming(target)
    if streaming and output.get("x-cog-array-type") != "iterator":
        raise where.error(
            func, "@streaming requires an Iterator[...], AsyncIterator[...] or ConcatenateIterator[...] return type"
        )
    max_concurrency = concurrency_max(target)
    document = build_document(inputs, output, train=train, streaming=streaming, version=version)
    return document, max_concurrency
