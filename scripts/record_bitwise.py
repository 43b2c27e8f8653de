"""Record tests/fixtures/bitwise.json for this CPU kind (see tests/bitwise_cases.py).

    python scripts/record_bitwise.py [--only CASE ...]

Needs real MNIST (GANCLI_DATA_DIR or ../shared/data). Adds or replaces the entry of
this machine's CPU signature; other signatures' entries are kept.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bitwise_cases import FIXTURE, cases, cpu_signature, run_case  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    doc = json.loads(FIXTURE.read_text()) if FIXTURE.exists() else {}
    sig = cpu_signature()
    entry = doc.get(sig, {})
    for name, argv in cases().items():
        if args.only and name not in args.only:
            continue
        with tempfile.TemporaryDirectory() as home:
            entry[name] = {"args": argv, **run_case(argv, Path(home))}
        print(name, entry[name]["sha256"]["generator"][:12], flush=True)
    doc[sig] = entry
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {FIXTURE} [{sig}] with {len(entry)} cases")


if __name__ == "__main__":
    main()
