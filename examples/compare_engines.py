"""Compare two patterns files written by ``xtal simulate --engine pymatgen`` and ``--engine fast``
from the same structures: the README's "fast reproduces pymatgen exactly" row.

Usage: python examples/compare_engines.py pymatgen.h5 fast.h5 [-o agreement.json]
Prints (and writes) the number of structures, reflections, hkl mismatches, the largest 2θ
difference (degrees) and the largest intensity difference relative to the strongest peak.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from xtal_cli.io.h5 import read_patterns


def agreement(reference_path: str, candidate_path: str) -> dict:
    """Peak-by-peak comparison of the structures both files hold, in the reference's order."""
    ref, new = read_patterns(reference_path), read_patterns(candidate_path)
    row = {pid: k for k, pid in enumerate(new.ids)}
    common = [(k, row[pid]) for k, pid in enumerate(ref.ids) if pid in row]
    count_mismatch = hkl_mismatch = peaks = 0
    max_tt = max_int = 0.0
    for i, j in common:
        tt_a, tt_b = ref.sticks_two_theta[i], new.sticks_two_theta[j]
        if len(tt_a) != len(tt_b):
            count_mismatch += 1
            continue
        peaks += len(tt_a)
        max_tt = max(max_tt, float(np.max(np.abs(tt_a - tt_b), initial=0.0)))
        ia, ib = ref.sticks_intensity[i], new.sticks_intensity[j]
        max_int = max(max_int, float(np.max(np.abs(ia - ib), initial=0.0) / ia.max()))
        hkl_mismatch += int(np.any(ref.sticks_hkl[i] != new.sticks_hkl[j], axis=1).sum())
    return {
        "structures": len(common),
        "only_in_one_file": len(ref.ids) + len(new.ids) - 2 * len(common),
        "peak_count_mismatches": count_mismatch,
        "peaks": peaks,
        "hkl_mismatches": hkl_mismatch,
        "max_abs_delta_two_theta_deg": max_tt,
        "max_intensity_delta_over_strongest": max_int,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("reference")
    parser.add_argument("candidate")
    parser.add_argument("-o", "--output")
    args = parser.parse_args()
    result = agreement(args.reference, args.candidate)
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text + "\n")
    exact = (
        result["peak_count_mismatches"] == result["hkl_mismatches"] == 0
        and result["max_abs_delta_two_theta_deg"] <= 1e-6
        and result["max_intensity_delta_over_strongest"] <= 1e-4
    )
    print("fast reproduces pymatgen" if exact else "ENGINES DISAGREE", file=sys.stderr)
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
