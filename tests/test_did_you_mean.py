"""Did-you-mean for mistyped names (issue #27): datasets, archs, losses, presets, run ids."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gancli.cli import app
from gancli.errors import did_you_mean


def test_closest_choice_or_nothing():
    assert did_you_mean("mnst", ["mnist", "fashion-mnist", "cifar10"]) == "'mnist'"
    assert did_you_mean("MNIST", ["mnist"]) == "'mnist'"
    assert did_you_mean("zzzz", ["mnist", "cifar10"]) == ""
    assert did_you_mean("x", []) == ""


@pytest.mark.parametrize("argv,words", [
    (["train", "--dataset", "mnst", "--dry-run"], "unknown dataset 'mnst' (did you mean 'mnist'?); valid choices:"),
    (["train", "--arch", "dcgn", "--dry-run"], "unknown arch 'dcgn' (did you mean 'dcgan'?); valid choices:"),
    (["train", "--loss", "lsgn", "--dry-run"], "unknown loss 'lsgn' (did you mean 'lsgan'?); valid choices:"),
    (["train", "--preset", "mnist-dcgn", "--dry-run"], "unknown preset 'mnist-dcgn' (did you mean 'mnist-dcgan'?)"),
    (["sample", "lates"], "unknown run 'lates' (did you mean 'latest'?); valid choices: latest"),
    (["train", "--loss", "qqqq", "--dry-run"], "unknown loss 'qqqq'; valid choices: bce"),
])
def test_mistyped_names_suggest_the_closest(home, argv, words):
    r = CliRunner().invoke(app, argv)
    assert r.exit_code == 2 and words in r.output, r.output


@pytest.mark.parametrize("argv,words", [
    (["train", "--bogus"], "error: No such option: --bogus"),
    (["sampel"], "error: No such command 'sampel'. Did you mean 'sample'? (help: gan -h)"),
    (["train", "--steps", "abc"], "error: Invalid value for '--steps'"),
])
def test_parsing_errors_are_one_error_line(home, argv, words):
    """Issue #27: an unknown option or command, or a bad value, reads like every other error:
    one `error:` line (and where help is), not Typer's usage line and boxed panel."""
    r = CliRunner().invoke(app, argv)
    assert r.exit_code == 2 and words in r.output, r.output
    assert [ln for ln in r.output.splitlines() if ln.strip()] == [r.output.strip()]  # a single line
    assert "╭" not in r.output and "Usage:" not in r.output


def test_no_far_fetched_suggestion():
    assert did_you_mean("stylegan9", ["mlp", "dcgan", "resnet", "unet", "cyclegan"]) == ""
