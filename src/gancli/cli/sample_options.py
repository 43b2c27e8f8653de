"""What the options of ``gan sample`` accept and which go together.

Each check raises one :class:`~gancli.errors.UsageError` line naming the bad option and
what is allowed. :mod:`gancli.cli.sample` calls them in this order: :func:`check_mode`
first; then :func:`check_timeline` or :func:`check_dataset` for those modes, else
:func:`check_images`, then (the source found) :func:`check_output`; and
:func:`check_classes` once the generator is loaded. Torch-free.
"""

from __future__ import annotations

from pathlib import Path

from gancli.config import MAX_SEED
from gancli.errors import UsageError
from gancli.seeding import check_seed

#: Images drawn when -n is not given (a square 8x8 grid).
DEFAULT_NUM = 64
#: Paths (rows) of --interpolate / --class-walk when -n is not given.
DEFAULT_PATHS = 8
#: Options that each choose what ``gan sample`` makes; at most one per command
#: (except --class-walk, which takes its steps from --interpolate).
MODES = ("--interpolate", "--class-walk", "--timeline", "--class-grid", "--individual", "--dataset-out")
#: The class options of each kind of command, as :func:`check_classes` names them.
CLASS_OPTIONS = {"images": "--class and --class-grid need", "class-walk": "--class-walk needs",
                 "dataset": "--class and --class-weights need"}


def check_mode(interpolate: int | None, class_walk: bool, timeline: bool, class_grid: bool, individual: bool,
               class_: int | None, dataset_out: Path | None, class_weights: str | None, seed: int,
               batch_size: int) -> bool:
    """At most one of :data:`MODES` (--class-walk may take --interpolate K), no --class with
    a mode that sets the classes itself, --class-weights only with --dataset-out, and the
    ranges every mode shares. Returns whether the command makes a walk (--interpolate /
    --class-walk)."""
    given = [name for name, on in zip(MODES, (interpolate is not None, class_walk, timeline, class_grid, individual,
                                              dataset_out is not None))
             if on and not (name == "--interpolate" and class_walk)]  # --class-walk --interpolate K: one mode
    if len(given) > 1:
        raise UsageError(f"{given[0]} and {given[1]} cannot be combined: choose one of {', '.join(MODES)} "
                         "(--class-walk takes --interpolate K for blended steps)")
    if class_ is not None and (class_walk or timeline):
        raise UsageError(f"--class and {'--class-walk' if class_walk else '--timeline'} cannot be combined"
                         + (": the walk goes through every class" if class_walk else ""))
    if class_weights is not None and dataset_out is None:
        raise UsageError("--class-weights goes with --dataset-out")
    check_seed(seed)
    if batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {batch_size}")
    return interpolate is not None or class_walk


def check_timeline(run: str, num: int | None, checkpoint: str, pingpong: bool, slerp: bool | None) -> None:
    """--timeline shows the grids a run stored: no options that make images, and a run, not a
    checkpoint file or bundle."""
    from gancli.bundle import is_bundle

    for name, given in (("-n", num is not None), ("--checkpoint", checkpoint != "latest"),
                        ("--pingpong", pingpong), ("--slerp/--lerp", slerp is not None)):
        if given:
            raise UsageError(f"{name} does not apply to --timeline (it shows the grids stored while training)")
    path = Path(run)
    if path.suffix == ".safetensors" or (path.is_dir() and is_bundle(path)):
        what = "a checkpoint file" if path.suffix == ".safetensors" else "an exported bundle"
        raise UsageError(f"--timeline needs a run (run-N, N, latest or a run directory), not {what}: {run}")


def check_dataset(out_dir: Path, num: int | None, output: Path | None, nrow: int | None,
                  class_weights: str | None) -> tuple[int, list[float] | None]:
    """--dataset-out DIR: no -o or --nrow, -n >= 1, DIR new or empty. Returns ``(-n or its
    default, the --class-weights numbers or None)``."""
    from gancli.generate.synthetic import check_dataset_dir, parse_class_weights

    for name, given in (("-o", output is not None), ("--nrow", nrow is not None)):
        if given:
            raise UsageError(f"{name} does not apply to --dataset-out (it writes one PNG per image into DIR)")
    num = DEFAULT_NUM if num is None else num
    if num < 1:
        raise UsageError(f"-n must be >= 1, got {num}")
    check_dataset_dir(out_dir)
    return num, parse_class_weights(class_weights) if class_weights is not None else None


def check_images(walk: bool, interpolate: int | None, class_walk: bool, slerp: bool | None, seed: int,
                 num: int | None, nrow: int | None) -> int:
    """Grids, files and walks: --slerp/--lerp only with --interpolate K >= 2, a walk's end seed
    in range, -n and --nrow >= 1. Returns -n or its default."""
    if slerp is not None and (interpolate is None or class_walk):
        raise UsageError("--slerp/--lerp choose how --interpolate moves z; "
                         + ("--class-walk keeps z fixed" if class_walk else "give --interpolate K"))
    if interpolate is not None and interpolate < 2:
        raise UsageError(f"--interpolate must be >= 2 (steps per path, both ends included), got {interpolate}")
    if walk and seed > MAX_SEED - 1:  # the walk's last column is `gan sample --seed S+1`
        raise UsageError(f"--seed must be in [0, 2^63 - 2] with --interpolate (it walks to seed S+1), got {seed}")
    num = num if num is not None else DEFAULT_PATHS if walk else DEFAULT_NUM
    if num < 1:
        raise UsageError(f"-n must be >= 1, got {num}")
    if nrow is not None and nrow < 1:
        raise UsageError(f"--nrow must be >= 1, got {nrow}")
    return num


def check_output(output: Path | None, walk: bool, individual: bool, nrow: int | None, pingpong: bool,
                 duration_ms: int | None) -> None:
    """--pingpong / --duration-ms only for walk GIFs, --nrow not in a walk grid, and -o a
    writable file of a known kind (or a new or empty folder with --individual)."""
    from gancli.generate.gif import check_frame_ms

    gif = output is not None and output.suffix.lower() == ".gif" and walk
    if (pingpong or duration_ms is not None) and not gif:
        where = "" if pingpong else ", or --timeline"
        raise UsageError(f"{'--pingpong' if pingpong else '--duration-ms'} applies to animated GIFs: "
                         f"--interpolate / --class-walk with -o *.gif{where}")
    if duration_ms is not None:
        check_frame_ms(duration_ms)
    if walk and nrow is not None and not gif:
        raise UsageError("--nrow applies to walk GIFs; in a walk grid the rows are the paths and the columns "
                         "the steps (use -n for the number of paths)")
    if output is not None:
        from gancli.generate import sampling, walks

        (walks.check_walk_path if walk else sampling.check_new_folder if individual else sampling.check_grid_path)(output)


#: The largest --zoom (a 28-px image at 32x is 896 px).
MAX_ZOOM = 32


def check_zoom(zoom: int | None, output: Path | None, walk: bool, individual: bool, dataset_out: bool,
               timeline: bool) -> None:
    """--zoom N only for grid images (not one file per image, a dataset, or a GIF, whose frames
    are enlarged by themselves), N in 1..:data:`MAX_ZOOM`."""
    if zoom is None:
        return
    gif = output is not None and output.suffix.lower() == ".gif"
    other = ("--individual" if individual else "--dataset-out" if dataset_out else "--timeline" if timeline
             else "a walk GIF (its frames are enlarged to at least 256 px by themselves)" if walk and gif else None)
    if other is not None:
        raise UsageError(f"--zoom applies to grid images (-o *.png, .jpg, ...), not to {other}"
                         + (": those files keep the images' own size" if individual or dataset_out else ""))
    if not 1 <= zoom <= MAX_ZOOM:
        raise UsageError(f"--zoom must be in 1..{MAX_ZOOM} (times the grid's own size), got {zoom}")


def check_classes(num_classes: int, label: str, kind: str, class_: int | None, others: bool) -> None:
    """The class options given fit a generator of ``num_classes`` classes (0 = unconditional)
    from ``label``: none for an unconditional one, and --class in ``0..num_classes-1`` (for
    --dataset-out :func:`~gancli.generate.synthetic.class_counts` checks the range).

    Args:
        kind: the command's class options, a key of :data:`CLASS_OPTIONS`.
        others: whether a class option other than --class was given (--class-grid,
            --class-walk, --class-weights).
    """
    if (class_ is not None or others) and not num_classes:
        raise UsageError(f"{CLASS_OPTIONS[kind]} a conditional run (trained with --conditional); {label} is unconditional")
    if class_ is not None and kind != "dataset" and not 0 <= class_ < num_classes:
        raise UsageError(f"--class {class_} is out of range; valid choices: 0..{num_classes - 1}")
