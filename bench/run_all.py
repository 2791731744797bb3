"""Run every benchmark script ``bench/bench_*.py`` in turn (``make bench``).

Each script prints one JSON object on stdout and writes ``bench/results/<name>.json``; this
runner collects them into ``bench/results/summary.json``. Benchmarks need ``../shared/data``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    only = set(sys.argv[1:])
    summary, failed = {}, []
    for script in sorted(HERE.glob("bench_*.py")):
        name = script.stem.removeprefix("bench_")
        if only and name not in only:
            continue
        print(f"== bench {name}", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            failed.append(name)
            continue
        try:
            summary[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            summary[name] = {"raw": proc.stdout}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({"ran": sorted(summary), "failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
