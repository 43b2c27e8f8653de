"""Each gan train option is declared once (on its config field) and its help tells the truth."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from gancli.cli import app
from gancli.cli.train import COMMAND_OPTIONS, format_default
from gancli.config import OPTION_FIELDS, RunConfig, option_specs

runner = CliRunner()


def _train_command():
    return typer.main.get_command(app).commands["train"]


def _dry_run(*args: str) -> dict:
    r = runner.invoke(app, ["train", "--dry-run", *args])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_every_config_option_and_only_those_are_generated():
    names = {p.name for p in _train_command().params}
    assert names == set(OPTION_FIELDS) | set(COMMAND_OPTIONS)


def test_help_shows_the_default_the_resolved_config_uses():
    """Parse each option's [default: ...] in `gan train --help` and compare with --dry-run."""
    r = runner.invoke(app, ["train", "--help-all"], env={"COLUMNS": "400"})
    assert r.exit_code == 0
    resolved = _dry_run()
    checked = 0
    for spec in option_specs():
        line = next(ln for ln in r.output.splitlines() if re.match(rf"\W*{re.escape(spec.flag)}(\s|/|,)", ln))
        shown = re.search(r"\[default: ([^;\]]+)", line).group(1).strip()
        value = resolved[spec.section][spec.field]
        if spec.name == "steps":  # derived from the default epochs
            assert shown == "from --epochs"
            continue
        if spec.name == "augment":
            assert shown == "none" and value == ""
            continue
        assert shown == format_default(value), f"{spec.flag}: help says {shown!r}, --dry-run has {value!r}"
        checked += 1
    assert checked == len(option_specs()) - 2


def test_help_names_the_loss_recipe_defaults():
    r = runner.invoke(app, ["train", "--help-all"], env={"COLUMNS": "400"})
    line = next(ln for ln in r.output.splitlines() if re.match(r"\W*--d-steps\s", ln))
    assert "[default: 1; wgan-gp: 5]" in line
    assert _dry_run("--loss", "wgan-gp")["optim"]["d_steps"] == 5
    line = next(ln for ln in r.output.splitlines() if re.match(r"\W*--r1-gamma\s", ln))
    assert "[default: 0; wgan-gp: 0; --arch mlp: 1]" in line  # an architecture's recipe too
    assert _dry_run("--arch", "mlp")["loss"]["r1_gamma"] == 1.0


def test_help_has_no_type_metavars():
    for cmd in ("train", "sample", "translate", "evaluate", "export"):
        r = runner.invoke(app, [cmd, "--help"], env={"COLUMNS": "200"})
        assert "<bool>" not in r.output, cmd


def test_config_module_imports_no_gancli_module_but_errors_and_conditioning():
    code = ("import sys, gancli.config; "
            "print(sorted(m for m in sys.modules if m.startswith('gancli')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert eval(out) == ["gancli", "gancli._version", "gancli.conditioning", "gancli.config", "gancli.errors"]
    assert "torch" not in subprocess.run([sys.executable, "-c", "import sys, gancli.config; print(list(sys.modules))"],
                                         capture_output=True, text=True, check=True).stdout.split("'")


def _gancli_imports(tree) -> list:
    """Every import statement of a module, at any depth (functions and methods too: a lazy
    import is still an edge), except those under ``if TYPE_CHECKING:``, which never run."""
    import ast

    out, stack = [], [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


def _import_graph() -> dict[str, set[str]]:
    import ast
    from pathlib import Path

    src = Path(__import__("gancli").__file__).parent
    trees = {}
    for path in src.rglob("*.py"):
        mod = "gancli." + ".".join(path.relative_to(src).with_suffix("").parts)
        trees[mod.removesuffix(".__init__")] = ast.parse(path.read_text())
    graph: dict[str, set[str]] = {}
    for mod, tree in trees.items():
        deps = set()
        for node in _gancli_imports(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gancli"):
                for alias in node.names:  # `from gancli.cli import train` imports the submodule
                    sub = f"{node.module}.{alias.name}"
                    deps.add(sub if sub in trees else node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("gancli")}
        graph[mod] = deps - {mod}
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(node, stack):
        for dep in sorted(graph.get(node, ())):
            if dep in stack:
                return [*stack, dep]
            if dep not in done:
                found = visit(dep, [*stack, dep])
                if found:
                    return found
        done.add(node)
        return None

    for mod in sorted(graph):
        found = visit(mod, [mod])
        if found:
            return found
    return None


def test_no_import_cycles_in_the_package():
    """A module's gancli imports, lazy ones included, never lead back to it."""
    graph = _import_graph()
    assert len(graph) > 40
    cycle = _find_cycle(graph)
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_the_cycle_finder_sees_function_level_imports():
    """The check above can fail: a lazy import back (as hooks.py -> tensorboard.py once had) is a cycle."""
    import ast

    tree = ast.parse("def f():\n    from gancli.b import x\n")
    graph = {"gancli.a": {n.module for n in _gancli_imports(tree)}, "gancli.b": {"gancli.a"}}
    assert _find_cycle(graph) == ["gancli.a", "gancli.b", "gancli.a"]
    typed = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gancli.b import x\n")
    assert [n.module for n in _gancli_imports(typed)] == ["typing"]


def test_dry_run_with_nproc_resolves_once(monkeypatch):
    import gancli.resolve as resolve

    calls = []
    real = resolve.build_config
    monkeypatch.setattr(resolve, "build_config", lambda *a, **k: calls.append(1) or real(*a, **k))
    r = runner.invoke(app, ["train", "--dry-run", "--nproc", "2", "--arch", "mlp", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert len(calls) == 1
    assert RunConfig.from_json(r.output).model.arch == "mlp"


def test_command_options_are_not_config_fields():
    """The options declared in cli/train.py and those generated from the config fields are
    apart: no name and no flag of `gan train` belongs to two parameters."""
    assert {"lr", "conditional", "resume", "preset", "list_presets", "dry_run", "nproc"} <= set(COMMAND_OPTIONS)
    assert not set(COMMAND_OPTIONS) & set(OPTION_FIELDS)
    params = _train_command().params
    names = [p.name for p in params]
    assert len(names) == len(set(names)) == len(OPTION_FIELDS) + len(COMMAND_OPTIONS)
    flags = [f for p in params for f in (*p.opts, *p.secondary_opts)]
    assert sorted(f for f in flags if flags.count(f) > 1) == []


def test_launched_rank_trains_the_config_it_is_handed(monkeypatch, tmp_path, mnist_dir, home):
    """A process started by `gan train --nproc` takes the launcher's resolved config and
    resolves nothing itself."""
    import gancli.resolve as resolve
    from gancli.cli.train import LAUNCH_ENV
    from gancli.resolve import build_config

    cfg = build_config({"arch": "mlp", "limit": 64, "batch_size": 16, "steps": 2, "device": "cpu",
                        "sample_every": 0, "log_every": 1})
    path = tmp_path / "launch.json"
    path.write_text(json.dumps({"config": cfg.to_dict(), "resume": None}))
    monkeypatch.setenv(LAUNCH_ENV, str(path))
    monkeypatch.setattr(resolve, "build_config", lambda *a, **k: pytest.fail("a launched rank resolved again"))
    r = runner.invoke(app, ["-q", "train"])
    assert r.exit_code == 0, r.output
    from gancli.runs import RunStore

    (run,) = RunStore(home).list()
    # what the launcher resolved, with --precision auto made concrete (fp32: pinned in the suite)
    assert cfg.train.precision == "auto"
    assert run.read_config() == cfg.replace(train=dataclasses.replace(cfg.train, precision="fp32"))


@pytest.mark.parametrize("args,message", [
    (["--arch", "stylegan9"], "unknown arch 'stylegan9'"),
    (["--task", "paint"], "unknown task 'paint'"),
    (["--task", "denoise", "--scale", "2"], "--task denoise takes no --scale; its options: --noise-std"),
    (["--task", "superres", "--scale", "3"], "--scale 3 is not valid; valid choices: 2, 4, 8"),
    (["--task", "colorize"], "task colorize needs RGB images (3 channels), got 1 channel"),
    (["--loss", "l7"], "unknown loss 'l7'"),
    (["--optimizer", "lbfgs"], "unknown optimizer 'lbfgs'"),
    (["--precision", "fp64"], "unknown precision 'fp64'"),
    (["--augment", "diffaug:blur"], "unknown augmentation policy 'blur'"),
    (["--batch-size", "0"], "--batch-size must be > 0"),
    (["--steps", "5", "--epochs", "1"], "give --steps or --epochs, not both"),
])
def test_bad_values_are_rejected_before_torch_is_imported(args, message):
    """A bad `gan train` value costs no torch import (seconds on a slow machine)."""
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom gancli.cli import app\n"
            f"r = CliRunner().invoke(app, ['train', *{args!r}])\n"
            "print(r.exit_code, 'torch' in sys.modules)\nprint(r.output)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    status, output = out.split("\n", 1)
    assert status == "2 False", out
    assert message in output


def test_train_help_is_short_and_help_all_has_everything():
    """Issue #27: `gan train --help` was ~400 lines at 80 columns; it lists the common options and
    says how to see the rest; `--help-all` lists every option."""
    from gancli.cli.train import SHORT_HELP_OPTIONS

    short = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "80"})
    full = runner.invoke(app, ["train", "--help-all"], env={"COLUMNS": "80"})
    assert short.exit_code == 0 and full.exit_code == 0
    assert len(short.output.splitlines()) < 130 < len(full.output.splitlines()), len(short.output.splitlines())
    assert "more options" in short.output and "gan train --help-all" in short.output
    for flag in ("--dataset", "--arch", "--loss", "--epochs", "--resume", "--preset"):
        assert flag in short.output and flag in full.output
    for flag in ("--ngf", "--r1-gamma", "--ema-decay", "--monitor-every"):
        assert flag not in short.output and flag in full.output
    hidden = {p.name for p in _train_command().params} - SHORT_HELP_OPTIONS
    assert not any(getattr(p, "hidden", False) for p in _train_command().params if p.name in hidden)  # restored
