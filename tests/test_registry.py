import pytest

from gancli.data import DATASETS
from gancli.errors import UnknownNameError
from gancli.losses import LOSSES
from gancli.models import ARCHS
from gancli.registry import Registry


def test_register_get_names():
    reg: Registry = Registry("widget")

    @reg.register("a", "first")
    def a():
        return 1

    @reg.register("b")
    def b():
        """Second widget.

        More text."""

    assert reg.names() == ["a", "b"]
    assert reg.get("a") is a
    assert reg.entry("b").summary == "Second widget."
    assert "a" in reg and "z" not in reg
    assert len(reg) == 2


def test_duplicate_name_is_rejected():
    reg: Registry = Registry("widget")
    reg.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="duplicate widget name 'a'"):
        reg.register("a")(lambda: 2)


def test_unknown_name_lists_choices():
    reg: Registry = Registry("widget")
    reg.register("a")(lambda: 1)
    reg.register("b")(lambda: 1)
    with pytest.raises(UnknownNameError) as e:
        reg.get("c")
    assert str(e.value) == "unknown widget 'c'; valid choices: a, b"
    assert e.value.exit_code == 2


def test_builtin_registries():
    assert {"mlp", "dcgan"} <= set(ARCHS.names())
    assert {"bce", "minimax"} <= set(LOSSES.names())
    assert "mnist" in DATASETS.names()
    for reg in (ARCHS, LOSSES, DATASETS):
        for entry in reg:
            assert entry.summary, f"{reg.kind} {entry.name} has no summary"
