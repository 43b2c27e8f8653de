"""Restructuring changes nothing: fixed-seed runs give the pinned checkpoints bit for bit.

See tests/bitwise_cases.py for what each case trains and how the fixture was recorded.
"""

from __future__ import annotations

import json

import pytest
from bitwise_cases import FIXTURE, cases, cpu_signature, run_case, task_cases

pytestmark = pytest.mark.usefixtures("mnist_dir")


def _pinned() -> dict:
    doc = json.loads(FIXTURE.read_text())
    sig = cpu_signature()
    if sig not in doc:
        pytest.skip(f"no bitwise fixture for CPU kind {sig} (recorded: {', '.join(doc)}); "
                    "record one with python scripts/record_bitwise.py on the code before a change")
    return doc[sig]


def test_fixture_covers_every_case():
    """This CPU kind's fixture pins every generation case (the image-to-image cases may be missing
    from a kind recorded before they existed), nothing else, and every image-to-image case is
    pinned on at least one CPU kind."""
    pinned, tasks = set(_pinned()), set(task_cases())
    assert pinned <= set(cases())
    assert set(cases()) - tasks <= pinned
    recorded = set().union(*(set(entry) for entry in json.loads(FIXTURE.read_text()).values()))
    assert tasks <= recorded


# The two --eval-every cases build the 60,000-image reference statistics (~30-40 s each): CI runs
# them with `pytest -m slow`.
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if "eval-every" in n else n
                                  for n in sorted(cases())])
def test_same_checkpoint_and_metrics_bit_for_bit(name, tmp_path):
    pinned = _pinned()
    if name not in pinned and name in task_cases():
        pytest.skip(f"no bitwise fixture for case {name} on CPU kind {cpu_signature()} (recorded on other kinds "
                    "only); record it with python scripts/record_bitwise.py --only " + name)
    want = pinned[name]
    args = cases()[name]
    assert want["args"] == args, "the case's options changed since the fixture was recorded"
    got = run_case(args, tmp_path / "home")
    assert got["checkpoint"] == want["checkpoint"]
    assert got["sha256"] == want["sha256"]
    assert got["metrics"] == want["metrics"]
