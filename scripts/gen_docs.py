"""Regenerate the tables of docs/cli.md and docs/runs.md that restate the code.

    python scripts/gen_docs.py           rewrite the generated blocks in place
    python scripts/gen_docs.py --check   exit 1, naming the files, when a block is stale

A generated block sits between ``<!-- BEGIN GENERATED: NAME -->`` and
``<!-- END GENERATED: NAME -->``; everything outside the markers is hand-written and
kept as it is. The blocks come from:

* the ``gan`` Typer app, read through click's introspection (``typer.main.get_command``):
  every command's options and arguments, their flags, types, defaults and help;
* the option declarations of ``gan train`` (:func:`gancli.config.option_specs`): config
  field, valid names or range, whether it may change on resume; and the recipe defaults of
  the losses and architectures;
* the frozen dataclasses of :mod:`gancli.config`: every config field, its JSON type, default
  and meaning (the option's help, or the ``doc`` of a :func:`~gancli.config.derived` field);
* the presets (:mod:`gancli.presets`) and one resolved config (:func:`gancli.resolve.build_config`).

``tests/test_docs_generated.py`` fails when the committed docs differ from what this writes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import typer  # noqa: E402

from gancli.cli import app  # noqa: E402
from gancli.cli.train import format_default, preset_flags  # noqa: E402
from gancli.config import RESUMABLE_OPTIONS, DataConfig, OptionSpec, RunConfig, flag, option_specs  # noqa: E402
from gancli.resolve import build_config, registry  # noqa: E402

#: The files that hold generated blocks.
DOCS = ("docs/cli.md", "docs/runs.md")
BLOCK = re.compile(r"(<!-- BEGIN GENERATED: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- END GENERATED: (?P=name) -->)", re.S)
#: The tiny run of docs/runs.md's example (its metrics.jsonl and checkpoint examples come from it).
EXAMPLE_ARGS = "--limit 256 --batch-size 32 --steps 4 --log-every 2 --nz 16 --ngf 8 --ndf 8"
_METAVARS = {"int": "INTEGER", "str": "TEXT", "float": "FLOAT", "Path": "PATH"}
_DEFAULT_IN_HELP = re.compile(r"\s*\\?\[default: (.*)\]\s*$")
#: ``gan train`` options that are not config fields but set some (cli/train.py COMMAND_OPTIONS).
_COMMAND_FIELDS = {"lr": "optim.lr_g, optim.lr_d", "conditional": "model.num_classes"}


# -- markdown helpers ------------------------------------------------------------------------
def cell(text: str) -> str:
    """Text for a table cell: ``|`` escaped, ``<`` as an entity (``<run>`` is not a tag)."""
    return text.replace("\\[", "[").replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def code(text: str) -> str:
    """``text`` as inline code (``|`` escaped for tables); empty stays empty."""
    return f"`{text}`".replace("|", "\\|") if text else ""


def table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# -- the Typer app through click's introspection ---------------------------------------------
def command(path: str):
    """The click command of ``gan <path>`` (``""``: the app itself, ``"runs list"``...)."""
    cmd = typer.main.get_command(app)
    for name in path.split():
        cmd = cmd.commands[name]
    return cmd


def option_label(p) -> str:
    """``-d``, ``--dataset NAME``; ``--download`` / ``--no-download``; an argument as ``RUN``."""
    if p.param_type_name == "argument":
        name = p.metavar or p.name.upper() + ("..." if p.nargs == -1 else "")
        return code(name) + " (argument)"
    short = [o for o in p.opts if not o.startswith("--")]
    long = [o for o in p.opts if o.startswith("--")]
    if p.is_flag or p.count:
        names = [*short, *long]
        out = ", ".join(code(n) for n in names)
        return out + "".join(" / " + code(n) for n in p.secondary_opts)
    metavar = p.metavar or _METAVARS.get(p.bare_type(), p.bare_type().upper())
    return ", ".join([*(code(s) for s in short), *(code(f"{n} {metavar}") for n in long)])


def help_and_default(p) -> tuple[str, str]:
    """``(help without its default, default)``: the ``[default: ...]`` the help states, else
    the declared default (flags: the flag that is on; None and off: nothing)."""
    text = (p.help or "").strip()
    m = _DEFAULT_IN_HELP.search(text)
    if m:
        return text[:m.start()].strip(), m.group(1)
    if p.param_type_name == "option" and (p.is_flag or p.count):
        if p.is_eager or p.default is None:  # --version, --install-completion: act and exit
            return text, ""
        if p.secondary_opts and p.default is not None:
            return text, (p.opts[-1] if p.default else p.secondary_opts[0])
        return text, "on" if p.default else "off"
    if p.default is None or p.show_default is False:
        return text, ""
    return text, format_default(p.default) if not isinstance(p.default, (list, tuple)) else ", ".join(p.default)


def option_table(path: str, panel: str | None = None, env: bool = False) -> str:
    """The options (and arguments) of ``gan <path>``, in declaration order; ``panel``: only
    those of that --help panel."""
    rows = []
    for p in command(path).params:
        if panel is not None and getattr(p, "rich_help_panel", None) != panel:
            continue
        text, default = help_and_default(p)
        row = [option_label(p)]
        if env:
            row.append(code(p.envvar or ""))
        rows.append([*row, cell(default), cell(text)])
    head = ["Option", *(["Env var"] if env else []), "Default", "Meaning"]
    return table(head, rows)


# -- gan train: the option declarations --------------------------------------------------------
def valid_values(spec: OptionSpec) -> str:
    """What an option accepts: the registry's names, the choices, or the range."""
    if spec.registry is not None:
        names = ", ".join(code(n) for n in registry(spec.registry).names())
        return names + (", or a folder of images" if spec.registry == "dataset" else "")
    if spec.choices is not None:
        return ", ".join(code(c) for c in spec.choices)
    if spec.bounds is not None:
        return code(spec.bounds.text())
    return ""


def train_table(panel: str) -> str:
    """One --help panel of ``gan train``: config options with their field, valid values and
    resumability; the command's own options (--lr, --resume...) without a field."""
    specs = {s.name: s for s in option_specs()}
    rows = []
    params = command("train").params
    assert set(_COMMAND_FIELDS) <= {p.name for p in params}, "an option of _COMMAND_FIELDS is gone from gan train"
    for p in params:
        if p.rich_help_panel != panel:
            continue
        text, default = help_and_default(p)
        spec = specs.get(p.name)
        if spec is None:
            fields = ", ".join(code(f) for f in _COMMAND_FIELDS[p.name].split(", ")) if p.name in _COMMAND_FIELDS else ""
            rows.append([option_label(p), cell(default), "", fields, cell(text)])
            continue
        meaning = cell(spec.help) + (" May change on resume." if spec.resumable else "")
        rows.append([option_label(p), cell(default), valid_values(spec), code(f"{spec.section}.{spec.field}"), meaning])
    return table(["Option", "Default", "Valid", "Config field", "Meaning"], rows)


def recipe_defaults() -> str:
    """The options that a loss's, an architecture's or a task's recipe sets, with the plain default
    (tasks with the same recipe share a column)."""
    recipes = [(code(e.name), e.defaults) for e in registry("loss") if e.defaults]
    recipes += [(code(f"--arch {e.name}"), e.defaults) for e in registry("arch") if e.defaults]
    tasks: dict[str, tuple[list[str], dict]] = {}
    for e in registry("task"):
        if e.defaults:
            tasks.setdefault(json.dumps(e.defaults, sort_keys=True), ([], e.defaults))[0].append(e.name)
    recipes += [(code(f"--task {', '.join(names)}"), d) for names, d in tasks.values()]
    specs = {s.name: s for s in option_specs()}
    names = list(dict.fromkeys(n for _, d in recipes for n in d))
    rows = [[code(flag(n)), code(f"{specs[n].section}.{specs[n].field}"), code(format_default(specs[n].default)),
             *(code(format_default(d[n])) if n in d else "" for _, d in recipes)] for n in names]
    return table(["Option", "Config field", "Plain default", *(f"{name} recipe" for name, _ in recipes)], rows)


def presets() -> str:
    rows = []
    for entry in registry("preset"):
        opts = entry.obj.options
        extra = [e.name for e in registry("loss") if e.defaults and opts.get("loss") == e.name]
        extra += [f"--arch {e.name}" for e in registry("arch") if e.defaults and opts.get("arch") == e.name]
        plus = "".join(f" (plus the {code(x)} recipe defaults)" for x in extra)
        rows.append([code(entry.name), code(preset_flags(opts)) + plus])
    return table(["Preset", "Options"], rows)


def resumable() -> str:
    return ", ".join(code(flag(n)) for n in sorted(RESUMABLE_OPTIONS)) + "\n"


# -- docs/runs.md: the config dataclasses -------------------------------------------------------
def _json_type(type_: str) -> str:
    return {"float | None": "float or null", "str": "string"}.get(type_, type_)


def config_section(section: str) -> str:
    """Every field of one RunConfig section: type, default, option, meaning."""
    cls = next(f.default_factory for f in dataclasses.fields(RunConfig) if f.name == section)
    specs = {(s.section, s.field): s for s in option_specs()}
    train = command("train")
    rows = []
    for f in dataclasses.fields(cls):
        stored = code(json.dumps(f.default))
        spec = specs.get((section, f.name))
        if spec is None:
            cli = code("--conditional") + " / " + code("--unconditional") if f.name == "num_classes" else "—"
            rows.append([code(f.name), _json_type(str(f.type)), stored, cli, cell(f.metadata["doc"])])
            continue
        p = next(p for p in train.params if p.name == spec.name)
        _, new_run = help_and_default(p)
        default = stored if new_run == format_default(f.default) else f"{stored} (gan train: {cell(new_run)})"
        meaning = cell(spec.help)
        valid = valid_values(spec)
        if valid:
            meaning += f" Valid: {valid}."
        if spec.resumable:
            meaning += " May change on resume."
        rows.append([code(f.name), _json_type(spec.type), default, option_label(p), meaning])
    return table(["Field", "Type", "Default", "Option", "Meaning"], rows)


def example_config() -> str:
    """``config`` of the example run: what ``gan train EXAMPLE_ARGS --dry-run`` prints."""
    args = shlex.split(EXAMPLE_ARGS)
    options = {a[2:].replace("-", "_"): int(v) for a, v in zip(args[::2], args[1::2])}
    cfg = build_config(options)
    assert cfg.data == DataConfig(limit=256)  # the dataset description alone: no file is read
    return "```json\n" + cfg.to_json() + "\n```\n"


# -- the blocks ---------------------------------------------------------------------------------
def blocks() -> dict[str, Callable[[], str]]:
    """Block name -> the function that writes it."""
    from gancli.config import DATA, MODEL, OPTIM, RUN, SPEED, TASK

    out: dict[str, Callable[[], str]] = {"cli-global": lambda: option_table("", env=True)}
    for key, panel in (("task", TASK), ("data", DATA), ("model", MODEL), ("optimization", OPTIM), ("run", RUN),
                       ("speed", SPEED)):
        out[f"cli-train-{key}"] = lambda panel=panel: train_table(panel)
    out["cli-recipe-defaults"] = recipe_defaults
    out["cli-presets"] = presets
    out["cli-resumable"] = resumable
    for path in ("sample", "translate", "evaluate", "report", "export", "runs list", "runs show", "runs compare", "runs rm",
                 "runs unlock"):
        out["cli-" + path.replace(" ", "-")] = lambda path=path: option_table(path)
    for sec in ("data", "model", "loss", "optim", "train", "task"):
        out[f"runs-config-{sec}"] = lambda sec=sec: config_section(sec)
    out["runs-resumable"] = resumable
    out["runs-example-config"] = example_config
    return out


def render(text: str, makers: dict[str, Callable[[], str]], cache: dict[str, str], where: str = "") -> str:
    """``text`` with every generated block rewritten.

    Raises:
        KeyError: a block name this script does not know.
    """
    def body(m: re.Match) -> str:
        name = m.group("name")
        if name not in makers:
            raise KeyError(f"{where}: unknown generated block {name!r}; known: {', '.join(makers)}")
        if name not in cache:
            cache[name] = makers[name]()
        return m.group(1) + cache[name] + m.group(4)

    return BLOCK.sub(body, text)


def generate() -> dict[Path, tuple[str, str]]:
    """``{path: (committed text, generated text)}`` for each file of :data:`DOCS`.

    Raises:
        ValueError: a block that no file holds.
    """
    makers, cache, out = blocks(), {}, {}
    for rel in DOCS:
        path = ROOT / rel
        text = path.read_text("utf-8")
        out[path] = (text, render(text, makers, cache, rel))
    missing = set(makers) - set(cache)
    if missing:
        raise ValueError(f"generated blocks placed in no file of {', '.join(DOCS)}: {', '.join(sorted(missing))}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check; exit 1 when a file is stale")
    args = ap.parse_args(argv)
    stale = []
    for path, (old, new) in generate().items():
        if old == new:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.write_text(new, "utf-8")
    verb = "stale" if args.check else "rewrote"
    for rel in stale:
        print(f"{verb}: {rel}")
    if args.check and stale:
        print("run: python scripts/gen_docs.py", file=sys.stderr)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
