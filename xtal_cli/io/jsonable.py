"""The one ``json.dumps(default=...)`` hook: numpy scalars, arrays and paths as plain values."""

from __future__ import annotations

import os


def json_default(obj):
    """Plain Python values for what records, reports and model metadata often hold."""
    import numpy as np  # here, not at import: the CLI's start-up loads this module

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: str | os.PathLike, data) -> None:
    """*data* as indented JSON at *path*, written atomically (temporary file, then rename)."""
    import json

    from xtal_cli.io.h5 import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=json_default) + "\n", encoding="utf-8")
