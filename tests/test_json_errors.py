"""``--json`` on a failing command (issue #26): stdout holds one JSON object
``{"error": {"message", "exit_code", "kind"}}``, stderr keeps the human ``error:`` line, and the
exit code is the object's."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gancli.cli import app

CASES = [
    # (argv, exit code, kind, words of the message)
    (["train", "--dataset", "mnst", "--dry-run", "--json"], 2, "unknown_dataset", "unknown dataset 'mnst'"),
    (["train", "--steps", "abc", "--json"], 2, "usage", "Invalid value for '--steps'"),
    (["train", "--eval-samples", "5", "--dry-run", "--json"], 2, "usage", "--eval-samples 5 is too few"),
    (["sample", "run-9", "--json"], 2, "usage", "unknown run 'run-9'"),
    (["translate", "run-9", "in.png", "-o", "out", "--json"], 2, "usage", "unknown run 'run-9'"),
    (["evaluate", "run-9", "--json"], 2, "usage", "unknown run 'run-9'"),
    (["export", "run-9", "--json"], 2, "usage", "unknown run 'run-9'"),
    (["report", "run-9", "--json"], 2, "usage", "unknown run 'run-9'"),
    (["runs", "list", "--json", "--bogus"], 2, "usage", "--bogus"),
    (["runs", "show", "run-9", "--json"], 2, "usage", "unknown run 'run-9'"),
    (["runs", "rm", "run-9", "--yes", "--json"], 2, "usage", "unknown run 'run-9'"),
    (["runs", "unlock", "run-9", "--json"], 2, "usage", "unknown run 'run-9'"),
    (["runs", "compare", "run-9", "run-8", "--json"], 2, "usage", "unknown run 'run-9'"),
]


@pytest.mark.parametrize("argv,code,kind,words", CASES, ids=[" ".join(c[0][:2]) + f" {i}" for i, c in enumerate(CASES)])
def test_json_error_object_on_stdout_for_every_command(home, argv, code, kind, words):
    r = CliRunner().invoke(app, argv)
    assert r.exit_code == code, (r.stdout, r.stderr)
    doc = json.loads(r.stdout)  # exactly one JSON document: nothing else on stdout
    assert set(doc) == {"error"} and set(doc["error"]) == {"message", "exit_code", "kind"}
    assert doc["error"]["exit_code"] == code and doc["error"]["kind"] == kind, doc
    assert words in doc["error"]["message"], doc
    assert "Traceback" not in r.stderr and r.stderr.strip()  # the human line stays on stderr


def test_without_json_stdout_stays_empty_on_error(home):
    r = CliRunner().invoke(app, ["sample", "run-9"])
    assert r.exit_code == 2 and r.stdout == "" and "error:" in r.stderr


def test_error_kind_names():
    from gancli.cli.common import error_kind
    from gancli.errors import GancliError, UnknownNameError, UsageError

    assert error_kind(GancliError("x")) == "error"
    assert error_kind(UsageError("x")) == "usage"
    assert error_kind(UnknownNameError("run", "run-9", [])) == "unknown_name"
    assert error_kind(PermissionError(13, "denied")) == "os"
