"""This process's rank, from the environment torchrun sets; torch-free, so the CLI can ask
before importing torch."""

from __future__ import annotations

import os

from gancli.errors import GancliError


def env_ranks() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the environment torchrun sets;
    ``(0, 1, 0)`` outside torchrun. Torch-free.

    Raises:
        GancliError: a variable that is not an integer, or an inconsistent set.
    """
    try:
        rank = int(os.environ.get("RANK", "0"))
        world = int(os.environ.get("WORLD_SIZE", "1"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise GancliError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them)") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise GancliError(f"bad process ranks: RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}")
    return rank, world, local
