"""The model's label list: one name per output, saved in the model folder.

Every tool reads the same list (issues 20 and 22): `python -m train` writes
``labels.json`` next to ``model.keras``; `convert.quantize`, the Python
reference (`convert.reference.Reference`), `host.parity` and `host.listen`
load it and report names, not indices. A model folder written before the
list existed has no file and means FSDD's ten digits, ``"0"`` .. ``"9"``.

A label that is a single decimal digit is that digit: events and reports
keep a ``digit`` field (an int, or None for a label that is not a digit)
beside the new ``label``.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

FILE = "labels.json"
MAX_LABELS = 32
MAX_NAME_BYTES = 32
FSDD_DIGITS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class Labels:
    """Names of the model's outputs, in output order [len = the model's output size]."""

    names: tuple[str, ...] = FSDD_DIGITS

    def __post_init__(self) -> None:
        names = tuple(self.names)
        object.__setattr__(self, "names", names)
        if not 2 <= len(names) <= MAX_LABELS:
            raise ValueError(f"a model needs 2 .. {MAX_LABELS} labels, got {len(names)}: {list(names)}")
        seen: dict[str, str] = {}
        for n in names:
            if not isinstance(n, str) or not n.strip() or n != n.strip():
                raise ValueError(f"label {n!r}: a label is a non-empty name without leading or trailing spaces")
            if any(unicodedata.category(c).startswith("C") for c in n):
                raise ValueError(f"label {n!r} has a control character")
            if len(n.encode()) > MAX_NAME_BYTES:
                raise ValueError(f"label {n!r} is longer than {MAX_NAME_BYTES} bytes (UTF-8)")
            key = n.casefold()
            if key in seen:
                raise ValueError(f"labels {seen[key]!r} and {n!r} differ only in case; rename one")
            seen[key] = n

    def __len__(self) -> int:
        return len(self.names)

    def name(self, index: int | None) -> str | None:
        """The label of output ``index`` (None for None: a rejected event)."""
        return None if index is None else self.names[int(index)]

    def digit(self, index: int | None) -> int | None:
        """The digit output ``index`` stands for, or None (a rejected event, or a label that is not a digit)."""
        n = self.name(index)
        return int(n) if n is not None and len(n) == 1 and n in "0123456789" else None

    def sha256(self) -> str:
        """Hash of the names in order (canonical JSON, UTF-8)."""
        return hashlib.sha256(json.dumps(list(self.names), ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()

    def to_json(self) -> str:
        return json.dumps({"labels": list(self.names)}, ensure_ascii=False, indent=2) + "\n"

    def save(self, model_dir: str | Path) -> Path:
        path = Path(model_dir) / FILE
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, model_dir: str | Path) -> "Labels":
        """The model folder's labels.json; FSDD's digits when the folder has none (written before labels existed)."""
        path = Path(model_dir) / FILE
        if not path.is_file():
            return cls()
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            names = d["labels"] if isinstance(d, dict) else d
            if not isinstance(names, list):
                raise ValueError(f"'labels' must be a list of names, got {type(names).__name__}")
            return cls(tuple(names))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a valid label list ({exc}); it holds {{\"labels\": [\"name\", ...]}}, "
                             "one name per model output") from exc

    def check_outputs(self, n_outputs: int, where: str = "the model") -> None:
        """Raises ValueError unless there is one label per output."""
        if n_outputs != len(self.names):
            raise ValueError(f"{where} has {n_outputs} outputs but labels.json names {len(self.names)}: "
                             f"{list(self.names)}")
