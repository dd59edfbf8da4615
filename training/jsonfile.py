"""Small JSON records written beside datasets and weights (dataset.json, KIND.train.json, ...)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json(path: Path) -> dict[str, Any] | None:
    """The record at ``path``, or None when it is missing or not JSON (records are optional)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
