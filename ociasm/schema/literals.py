"""Static Python literals (defaults, choices, constants) read without evaluating code."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any


_MISSING = object()


class Unresolved(Exception):
    """The expression is not a literal this reader understands."""


@dataclass(frozen=True)
class DictLiteral:
    """A dict literal in source order; keys keep their type for `list(D.keys())` choices."""

    pairs: tuple[tuple[Any, Any], ...]


@dataclass(frozen=True)
class SetLiteral:
    """A set literal: a valid default, but (as in Cog) not a valid choices list."""

    items: tuple[Any, ...]


def literal(node: ast.expr) -> Any:
    """The value of a literal expression; raises Unresolved otherwise."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = literal(node.operand)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Unresolved
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.List):
        return [literal(e) for e in node.elts]
    if isinstance(node, ast.Set):
        return SetLiteral(tuple(literal(e) for e in node.elts))
    if isinstance(node, ast.Tuple):
        # Cog keeps the items it can read and drops the rest.
        return [v for v in (_maybe(e) for e in node.elts) if v is not _MISSING]
    if isinstance(node, ast.Dict):
        pairs = []
        for k, v in zip(node.keys, node.values, strict=True):
            key, val = (_maybe(k) if k is not None else _MISSING), _maybe(v)
            if key is not _MISSING and val is not _MISSING:
                pairs.append((key, val))
        return DictLiteral(tuple(pairs))
    raise Unresolved


def _maybe(node: ast.expr) -> Any:
    try:
        return literal(node)
    except Unresolved:
        return _MISSING


def to_json(value: Any) -> Any:
    if isinstance(value, DictLiteral):
        return {_key_text(k): to_json(v) for k, v in value.pairs}
    if isinstance(value, SetLiteral):
        return [to_json(v) for v in value.items]
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def _key_text(key: Any) -> str:
    # JSON object keys are strings; render others the way Go's %v does.
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return "<nil>" if key is None else str(key)
