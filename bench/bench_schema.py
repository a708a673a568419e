"""Time static schema generation for a generated 2,000-line predictor (run by hand).

    python bench/bench_schema.py [lines]

Prints the median and best wall time of generate_schema(); the target is < 50 ms.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ociasm.schema import generate_schema  # noqa: E402

HEADER = '''from typing import Iterator, Optional
from cog import BaseModel, BasePredictor, Input, Path, Secret

SIZES = ["256", "512", "1024"]
'''

HELPER = '''

def helper_{i}(values: list[int], scale: float = 1.0) -> list[float]:
    """A helper the predictor does not expose; it only makes the file long."""
    out = []
    for v in values:
        if v % 2:
            out.append(v * scale)
        else:
            out.append(v / (scale or 1.0))
    return out
'''

MODEL = '''

class Result{i}(BaseModel):
    text: str
    score: float = 0.0
    tags: list[str]
    extra: Optional[dict[str, int]] = None
'''


def predictor_source(lines: int) -> str:
    parts = [HEADER]
    i = 0
    while sum(p.count("\n") for p in parts) < lines - 40:
        parts.append(MODEL.format(i=i) if i % 4 == 0 else HELPER.format(i=i))
        i += 1
    params = ",\n".join(
        f'        p{n}: {t} = Input(description="input {n}", {kw})'
        for n, (t, kw) in enumerate(
            [("str", 'default="x"'), ("int", "default=1, ge=0, le=10"), ("float", "default=0.5"), ("str", 'choices=SIZES, default="512"'),
             ("Path", 'accept="image/*"'), ("Optional[Path]", "default=None"), ("Secret", "default=None"), ("list[str]", 'default=["a"]')] * 3
        )
    )
    parts.append(f"\n\nclass Predictor(BasePredictor):\n    def setup(self) -> None:\n        pass\n\n    def run(\n        self,\n{params},\n    ) -> Iterator[Result0]:\n        yield Result0(text='x', tags=[])\n")
    return "".join(parts)


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = predictor_source(lines)
        (root / "predict.py").write_text(source)
        times = []
        for _ in range(30):
            start = time.perf_counter()
            generate_schema(root, "predict.py:Predictor", None)
            times.append((time.perf_counter() - start) * 1000)
    print(f"predict.py: {source.count(chr(10))} lines; generate_schema median {statistics.median(times):.1f} ms, best {min(times):.1f} ms (target < 50 ms)")


if __name__ == "__main__":
    main()
