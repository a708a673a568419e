"""Type annotations read from Python syntax, before any name is resolved.

Cog models an annotation as one of three shapes: a (possibly dotted) name, a
subscripted generic, or a `|` union. Keeping that shape lets resolution follow
Cog's rules exactly; string forward references are parsed into the same shape.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

SIMPLE, GENERIC, UNION = "simple", "generic", "union"


class AnnotationError(ValueError):
    """The annotation is not a type expression Cog can read."""


@dataclass(frozen=True)
class Ann:
    kind: str
    name: str = ""
    args: tuple[Ann, ...] = ()

    @property
    def base(self) -> str:
        """The name without its module qualifier: `typing.List` -> `List`."""
        return self.name.split(".", 1)[1] if "." in self.name else self.name

    def __str__(self) -> str:
        if self.kind == UNION:
            return " | ".join(str(a) for a in self.args)
        if self.kind == GENERIC:
            return f"{self.name}[{', '.join(str(a) for a in self.args)}]"
        return self.name


NONE = Ann(SIMPLE, "None")


def dotted_name(node: ast.expr) -> str | None:
    """`a.b.c` as text, or None when the expression is not a plain dotted name."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = dotted_name(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


def from_ast(node: ast.expr) -> Ann:
    name = dotted_name(node)
    if name is not None:
        return Ann(SIMPLE, name)
    if isinstance(node, ast.Constant):
        if node.value is None:
            return NONE
        if isinstance(node.value, str):
            return from_string(node.value)
    if isinstance(node, ast.Subscript):
        outer = dotted_name(node.value)
        if outer is None:
            raise AnnotationError(ast.unparse(node))
        elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if outer.rsplit(".", 1)[-1] == "Annotated":
            # Only the first argument is a type; metadata may be any expression.
            args = [from_ast(elts[0])] + [_metadata(e) for e in elts[1:]]
        else:
            args = [from_ast(e) for e in elts]
        return Ann(GENERIC, outer, tuple(args))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        members: list[Ann] = []
        for side in (node.left, node.right):
            ann = from_ast(side)
            members.extend(ann.args if ann.kind == UNION else (ann,))
        return Ann(UNION, args=tuple(members))
    raise AnnotationError(ast.unparse(node))


def from_string(text: str) -> Ann:
    """A quoted forward reference such as "Result" or "str | None"."""
    try:
        expr = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise AnnotationError(repr(text)) from None
    return from_ast(expr)


def _metadata(node: ast.expr) -> Ann:
    name = dotted_name(node)
    return Ann(SIMPLE, name if name is not None else "")
