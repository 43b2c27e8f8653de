"""The ``--augment`` value: DiffAugment policies (Zhao et al. 2020, arXiv 2006.10738).

Torch-free, so ``gan train`` validates the option before importing torch; the
augmentation itself is :class:`gancli.augment.diffaug.DiffAugment`.
"""

from __future__ import annotations

from gancli.errors import UsageError

AUGMENT_POLICIES: tuple[str, ...] = ("color", "translation", "cutout")

_SPEC_CHOICES = f"none, diffaug, diffaug:<policies> with policies from {', '.join(AUGMENT_POLICIES)}"


def parse_augment(spec: str) -> tuple[str, ...]:
    """Parse a ``--augment`` value into DiffAugment policies.

    ``""`` or ``"none"`` -> ``()`` (no augmentation); ``"diffaug"`` -> all of
    :data:`AUGMENT_POLICIES`; ``"diffaug:color,translation"`` -> those
    policies, in the order given.

    Raises:
        UsageError: an unknown value or policy, an empty or duplicated policy;
            the one-line message names the bad value and the valid choices.
    """
    text = spec.strip()
    if text in ("", "none"):
        return ()
    if text == "diffaug":
        return AUGMENT_POLICIES
    head, sep, tail = text.partition(":")
    if head != "diffaug" or not sep:
        raise UsageError(f"unknown augmentation {spec!r}; valid choices: {_SPEC_CHOICES}")
    policies: list[str] = []
    for raw in tail.split(","):
        name = raw.strip()
        if name not in AUGMENT_POLICIES:
            what = f"policy {name!r}" if name else "empty policy"
            raise UsageError(f"unknown augmentation {what} in {spec!r}; valid choices: {_SPEC_CHOICES}")
        if name in policies:
            raise UsageError(f"duplicate augmentation policy {name!r} in {spec!r}; valid choices: {_SPEC_CHOICES}")
        policies.append(name)
    return tuple(policies)
