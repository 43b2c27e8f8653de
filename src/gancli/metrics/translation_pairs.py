"""The test pairs ``gan evaluate`` scores a paired (pix2pix, ``--task paired``) or unpaired
(CycleGAN, ``--task unpaired``) run on: inputs and their true targets, matched by file name
(the protocol: docs/metrics.md, "Image-to-image runs"; used by
:func:`gancli.metrics.translation_eval.evaluate_translation`).

Where the pairs are, first found wins:

* ``--pairs DIR``: ``DIR/A`` + ``DIR/B``, or ``DIR/testA`` + ``DIR/testB``, matched by file name
  without extension (:func:`gancli.translate.pairs.match_by_name`); for a ``--paired-layout ab``
  run also side-by-side A|B images in ``DIR/test`` or ``DIR``.
* unpaired runs: ``ROOT/testA`` + ``ROOT/testB`` of the run's ``--dataset ROOT`` (CycleGAN's
  layout; scripts/make_unpaired_mnist.py writes ``testB/x.png`` as ``testA/x.png`` restyled).
* paired runs: ``--paired-layout ab``: the A|B images of ``ROOT/test``; ``folders``:
  ``ROOT/test/A`` + ``ROOT/test/B``, else ``ROOT/testA`` + ``ROOT/testB``.

``direction`` (unpaired runs): ``a2b`` takes the A images as inputs and B as targets, ``b2a``
the reverse. Labels (label preservation): a ``labels.json`` (file name -> int label) in the
target folder, else in the input folder.

No Typer, no Rich; torch-free at import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gancli.errors import UsageError

__all__ = ["LABELS_FILE", "TestPairs", "expected_pairs_place", "find_test_pairs", "load_test_pairs"]

#: The file of a pair folder that names each image's label (file name -> int).
LABELS_FILE = "labels.json"


@dataclass
class TestPairs:
    """Test pairs found, not decoded.

    Attributes:
        root: the folder they were found in. inputs, targets: the folders of the inputs and of
            the targets (the same folder for side-by-side A|B images).
        pairs: ``[(name, input file, target file or None), ...]`` sorted by name (None: an A|B image).
        swapped: the target is the A side (``b2a``). held_out: the run's own test split (True),
            or ``--pairs`` (None: unknown).
    """

    root: Path
    inputs: Path
    targets: Path
    pairs: list[tuple[str, Path, Path | None]]
    swapped: bool
    held_out: bool | None


def _matched(root: Path, names: tuple[str, str], swapped: bool, held_out: bool | None) -> TestPairs | None:
    from gancli.translate.pairs import match_by_name

    dir_a, dir_b = root / names[0], root / names[1]
    if not (dir_a.is_dir() or dir_b.is_dir()):
        return None
    if not (dir_a.is_dir() and dir_b.is_dir()):
        missing = dir_b if dir_a.is_dir() else dir_a
        raise UsageError(f"test pair folder {missing} not found; test pairs are {names[0]}/ and {names[1]}/ "
                         "holding the same file names")
    found = match_by_name(dir_a, dir_b)
    if swapped:
        found = [(name, b, a) for name, a, b in found]
        dir_a, dir_b = dir_b, dir_a
    return TestPairs(root, dir_a, dir_b, found, swapped, held_out)


def _side_by_side(folder: Path, held_out: bool | None) -> TestPairs | None:
    from gancli.translate.pairs import scan_paired

    if not folder.is_dir():
        return None
    split = "test" if (folder / "test").is_dir() else "train"
    if split == "train" and (folder / "train").is_dir():
        return None
    found = scan_paired(folder, "ab", split)
    where = folder / "test" if split == "test" else folder
    return TestPairs(folder, where, where, found, False, held_out)


def find_test_pairs(translator, pairs: str | Path | None = None, direction: str | None = None) -> TestPairs:
    """The test pairs of ``translator`` (a paired or unpaired run's
    :class:`~gancli.translate.load.Translator`; module doc: where they are looked for).

    Args:
        pairs: ``--pairs DIR``; None = the run's dataset folder's test split.
        direction: ``a2b`` (default) or ``b2a``: unpaired runs only.

    Raises:
        UsageError: no test pairs there (one line: what to put where, or ``--pairs DIR``); a
            domain folder without its twin; unmatched names (as
            :func:`~gancli.translate.pairs.match_by_name`).
    """
    cfg = translator.config
    swapped = direction == "b2a"
    ab = translator.task == "paired" and cfg.task.paired_layout == "ab"
    label = str(translator.path)
    if pairs is not None:
        root = Path(pairs).expanduser()
        if not root.is_dir():
            raise UsageError(f"--pairs {pairs} is not a folder; give a folder with A/ and B/ (or testA/ and testB/) "
                             "holding the inputs and their targets under the same file names")
        found = _matched(root, ("A", "B"), swapped, None) or _matched(root, ("testA", "testB"), swapped, None)
        if found is None and ab:
            found = _side_by_side(root, None)
        if found is None:
            raise UsageError(f"--pairs {pairs} holds no test pairs: put the inputs in {root / 'A'}/ and their targets "
                             f"in {root / 'B'}/ under the same file names (or testA/ and testB/)")
        return found
    root = Path(cfg.data.dataset).expanduser()
    found = None
    if translator.task == "unpaired":
        found = _matched(root, ("testA", "testB"), swapped, True)
    elif ab:
        found = _side_by_side(root / "test", True) if (root / "test").is_dir() else None
    else:
        found = _matched(root / "test", ("A", "B"), swapped, True) or _matched(root, ("testA", "testB"), swapped, True)
    if found is None:
        raise UsageError(f"no test pairs for {label}: put them in {expected_pairs_place(translator)}, or pass --pairs DIR "
                         "(a folder with A/ inputs and B/ targets, or testA/ and testB/, matched by file name)")
    return found


def expected_pairs_place(translator) -> str:
    """Where :func:`find_test_pairs` looks for the test pairs of ``translator``'s run (no
    ``--pairs``), in words: the folders under the run's dataset folder."""
    root = Path(translator.config.data.dataset).expanduser()
    if translator.task == "unpaired":
        return f"{root / 'testA'}/ and {root / 'testB'}/ (testB/x.png the target of testA/x.png)"
    if translator.task == "paired" and translator.config.task.paired_layout == "ab":
        return f"{root / 'test'}/ (side-by-side A|B images)"
    return f"{root / 'test' / 'A'}/ and {root / 'test' / 'B'}/ (matched by file name)"


def _labels(folder: Path, files: list[Path]) -> list[int] | None:
    """The labels of ``files`` from ``folder/labels.json`` (keys: the path below ``folder``, with
    or without extension); None when there is no such file or it lacks one of them."""
    path = folder / LABELS_FILE
    if not path.is_file():
        return None
    try:
        table: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UsageError(f"{path} is not a JSON object of file name -> label ({e})") from None
    out = []
    for f in files:
        rel = f.relative_to(folder).as_posix()
        value = table.get(rel, table.get(rel.rsplit(".", 1)[0]))
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        out.append(value)
    return out


def load_test_pairs(translator, found: TestPairs, num: int | None = None):
    """Decode the first ``num`` (None = all) of ``found``'s pairs at the run's shape.

    Returns:
        ``(inputs, targets, labels, record, notes)``: ``inputs`` ``(N, in_channels, S, S)`` and
        ``targets`` ``(N, img_channels, S, S)`` uint8 (S the run's image size; images conformed as
        in training), ``labels`` ``(N,)`` int64 or None, ``record`` the ``images`` entry of the
        protocol, ``notes`` (labels found but incomplete).

    Raises:
        GancliError: an unreadable image. UsageError: as :func:`gancli.translate.pairs.decode_pairs`.
    """
    import torch

    from gancli.translate.pairs import decode_pairs

    pairs = found.pairs[:num] if num else found.pairs
    data = decode_pairs(pairs, translator.in_channels, translator.config.model.img_resolution,
                        translator.img_channels, where=found.root)
    notes: list[str] = []
    labels, labels_file = None, None
    for folder, files in ((found.targets, [t if t is not None else i for _, i, t in pairs]),
                          (found.inputs, [i for _, i, _ in pairs])):
        if (folder / LABELS_FILE).is_file():
            labels_file = folder / LABELS_FILE
            labels = _labels(folder, files)
            if labels is None:
                notes.append(f"label preservation left out: {labels_file} lacks an int label for some of the "
                             "pairs scored")
            break
    record = {"pairs": str(found.root), "inputs": str(found.inputs), "targets": str(found.targets),
              "held_out": found.held_out, "labels": None if labels is None else str(labels_file)}
    label_t = None if labels is None else torch.tensor(labels, dtype=torch.int64)
    return data.a, data.b, label_t, record, notes
