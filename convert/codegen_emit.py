"""convert.codegen, part 3: C emission helpers (constant arrays, deduplicated).

Split out of convert/codegen.py (issue 22).
"""

from __future__ import annotations

import numpy as np


# ---------------------------------------------------------------------------
# C emission helpers
# ---------------------------------------------------------------------------


def _c_array(ctype: str, name: str, values, per_line: int = 24, align: bool = False) -> str:
    vals = [int(v) for v in np.asarray(values).reshape(-1).tolist()]
    fmt = (lambda v: f"0x{v:08x}u") if ctype == "uint32_t" else str  # noqa: E731
    if ctype == "uint32_t":
        per_line = min(per_line, 8)
    lines = []
    for i in range(0, len(vals), per_line):
        lines.append("    " + ", ".join(fmt(v) for v in vals[i:i + per_line]) + ",")
    attr = " SD_GRAPH_ALIGN16" if align else ""
    return f"static const {ctype} {name}[{len(vals)}]{attr} = {{\n" + "\n".join(lines) + "\n};\n"


def _c_float(x: float) -> str:
    s = f"{float(np.float32(x)):.9g}"
    if "e" not in s and "." not in s:
        s += ".0"
    return s + "f"


class _Emitter:
    """Collects deduplicated constant arrays."""

    def __init__(self):
        self.decls: list[str] = []
        self._by_key: dict = {}
        self.const_bytes = 0

    def array(self, ctype: str, prefix: str, values: np.ndarray, key=None, align=False) -> str:
        arr = np.ascontiguousarray(values)
        k = (ctype, key) if key is not None else (ctype, arr.dtype.str, arr.tobytes())
        if k in self._by_key:
            return self._by_key[k]
        name = f"{prefix}{len(self._by_key)}"
        self._by_key[k] = name
        self.decls.append(_c_array(ctype, name, arr, align=align))
        self.const_bytes += arr.size * arr.itemsize
        return name

    def raw(self, text: str) -> None:
        self.decls.append(text)
