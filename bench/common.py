"""Helpers for benchmark scripts: locating shared data and writing results."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

from xtal_cli.commands._common import available_cores

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "bench" / "results"
WORK = REPO / "bench" / "work"  # scratch files (git-ignored)


def require_shared() -> Path:
    if not SHARED_DATA.is_dir():
        sys.exit("bench: ../shared/data is needed for benchmarks")
    return SHARED_DATA


def write_result(name: str, result: dict) -> None:
    """Print *result* as one JSON line and keep it in bench/results/<name>.json."""
    result = {
        "benchmark": name,
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"python": platform.python_version(), "cpu_count": available_cores()},
        **result,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
