"""The tables of docs/cli.md and docs/runs.md that restate the code are generated from it
(scripts/gen_docs.py); the committed docs must be what the script writes."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

import pytest
import typer
from conftest import load_script
from typer.testing import CliRunner

from gancli.cli import app

REPO = Path(__file__).resolve().parents[1]
FIX = "python scripts/gen_docs.py"


gen_docs = load_script("scripts/gen_docs.py")


def test_the_committed_docs_are_what_the_code_generates():
    stale = []
    for path, (committed, generated) in gen_docs.generate().items():
        if committed != generated:
            rel = path.relative_to(REPO)
            diff = difflib.unified_diff(committed.splitlines(True), generated.splitlines(True),
                                        f"{rel} (committed)", f"{rel} (from the code)", n=0)
            stale.append("".join(diff)[:4000])
    assert not stale, f"docs differ from the code; to fix, run: {FIX}\n\n" + "\n".join(stale)


def test_an_edited_generated_line_is_caught_and_the_prose_kept():
    """What the first test relies on: a changed line inside the markers comes back as
    generated, text outside them stays as written, and an unknown block is an error."""
    text = (REPO / "docs" / "cli.md").read_text("utf-8")
    row = next(ln for ln in text.splitlines() if ln.startswith("| `--nz INTEGER` |"))
    edited = text.replace(row, row.replace("| 100 |", "| 128 |"))
    edited = edited.replace("## Global options\n", "## Global options (hand-edited)\n")
    assert edited != text
    again = gen_docs.render(edited, gen_docs.blocks(), {})
    assert row in again and "| 128 |" not in again
    assert "## Global options (hand-edited)\n" in again
    with pytest.raises(KeyError, match="unknown generated block 'nope'"):
        gen_docs.render("<!-- BEGIN GENERATED: nope -->\nx\n<!-- END GENERATED: nope -->\n", gen_docs.blocks(), {})


def test_every_option_has_a_row():
    """Each command's options, and each config field, appear in the generated tables."""
    from gancli.config import option_specs

    cli = (REPO / "docs" / "cli.md").read_text("utf-8")
    runs = (REPO / "docs" / "runs.md").read_text("utf-8")
    root = typer.main.get_command(app)

    def commands(cmd, path=()):
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from commands(sub, (*path, name))

    for path, cmd in commands(root):
        for p in cmd.params:
            if p.param_type_name == "option":
                assert f"| {gen_docs.option_label(p)} |" in cli, (path, p.name)
    for spec in option_specs():
        assert f"| `{spec.field}` |" in runs and f"`{spec.section}.{spec.field}`" in cli, spec.name


# flags the docs name that are not gancli's: tensorboard's, and one named as missing
_OTHER_FLAGS = {"--logdir", "--no-skip-bad-images"}


def test_every_flag_the_docs_name_exists():
    """Hand-written prose included: a flag removed or renamed in the code fails here."""
    root = typer.main.get_command(app)
    flags = {"--help"}

    def walk(cmd):
        for p in cmd.params:
            flags.update(p.opts)
            flags.update(p.secondary_opts)
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(root)
    for doc in ("cli.md", "runs.md"):
        named = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", (REPO / "docs" / doc).read_text("utf-8")))
        assert named - flags - _OTHER_FLAGS == set(), doc


def test_the_example_config_is_what_dry_run_prints(mnist_dir):
    runs = (REPO / "docs" / "runs.md").read_text("utf-8")
    block = re.search(r"<!-- BEGIN GENERATED: runs-example-config -->\n```json\n(.*?)```", runs, re.S).group(1)
    r = CliRunner().invoke(app, ["train", *gen_docs.EXAMPLE_ARGS.split(), "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == json.loads(block)


def test_image_size_help_names_the_limits_the_data_module_checks():
    from gancli.config import option_specs
    from gancli.data import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE

    spec = next(s for s in option_specs() if s.name == "image_size")
    assert f"{MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}" in spec.help


def test_recipes_presets_table_restates_the_presets():
    """docs/recipes.md's presets table is hand-written (its step column explains folder presets in
    words), so this checks what it restates: every preset, with its summary, options, cost and
    source as gancli.presets has them."""
    from gancli.cli.train import preset_flags
    from gancli.presets import PRESETS

    text = (REPO / "docs" / "recipes.md").read_text()
    head = "| Preset | Recipe | Options | Steps (D updates) | Expected cost | Source |"
    lines = text[text.index(head):].split("\n\n")[0].splitlines()[2:]
    rows = {}
    for line in lines:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows[cells[0].strip("`")] = cells
    assert list(rows) == [e.name for e in PRESETS]
    for entry in PRESETS:
        preset, row = entry.obj, rows[entry.name]
        want = [preset.summary.replace("|", "\\|"), gen_docs.code(preset_flags(preset.options)),
                preset.cost.replace("|", "\\|"), preset.source.replace("|", "\\|")]
        assert [row[1], row[2], row[4], row[5]] == want, f"docs/recipes.md's row of {entry.name}"
