"""Training the LeNet-MNIST classifier: one recipe for the shipped weights and for CAS.

``scripts/train_lenet.py`` trains the classifier gancli ships (FD-LeNet, classifier IS,
the collapse monitor) with :func:`train_lenet`, and the Classification Accuracy Score
(:mod:`gancli.metrics.cas`) trains fresh copies of the same :class:`~gancli.metrics.lenet.LeNet`
with the same function, so "the same architecture and recipe" holds by construction.

The recipe (:data:`RECIPE`): Adam (Kingma & Ba, arXiv 1412.6980) with a one-cycle
learning-rate schedule (Smith & Topin, arXiv 1708.07120) peaking at ``lr``, batch 128, a
fresh random order of the training images every pass (the last partial batch dropped),
random translations of up to ``shift`` pixels filled with background -1, dropout 0.3
before the last layer. Inputs are ``(N, 1, 28, 28)`` float32 in [-1, 1]
(``uint8 / 127.5 - 1``), exactly as gancli feeds its discriminators.

Deterministic for a given seed, data order and CPU thread count; the global torch RNG is
left as it was (training runs inside :func:`torch.random.fork_rng`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from gancli.metrics.lenet import LeNet, check_images, lenet_outputs


@dataclass(frozen=True)
class Recipe:
    """The LeNet training recipe.

    Attributes:
        batch_size: images per optimizer step.
        lr: peak learning rate of the one-cycle schedule.
        shift: maximum random translation, pixels; 0 = no augmentation.
    """

    batch_size: int = 128
    lr: float = 3e-3
    shift: int = 2

    def describe(self) -> dict:
        """JSON-able description, as written into protocol records."""
        return {**asdict(self), "optimizer": "adam + one-cycle", "architecture": "gancli LeNet-MNIST",
                "augmentation": f"random translation up to {self.shift} px"}


RECIPE = Recipe()


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image of ``x`` (N, 1, H, W) by its own random (dy, dx) in
    [-max_shift, max_shift] pixels, filling with background -1. Returns a new tensor
    (``x`` itself when ``max_shift`` is 0)."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    s = max_shift
    padded = F.pad(x, (s, s, s, s), value=-1.0)
    offsets = torch.randint(0, 2 * s + 1, (n, 2), generator=gen)
    out = torch.empty_like(x)
    for dy in range(2 * s + 1):
        for dx in range(2 * s + 1):
            idx = ((offsets[:, 0] == dy) & (offsets[:, 1] == dx)).nonzero().squeeze(1)
            if len(idx):
                out[idx] = padded[idx, :, dy:dy + h, dx:dx + w]
    return out


def steps_for(num_images: int, epochs: int, batch_size: int = RECIPE.batch_size) -> int:
    """Optimizer steps of ``epochs`` passes over ``num_images`` (partial batches dropped), >= 1."""
    return max(1, epochs * (num_images // batch_size))


def train_lenet(x: torch.Tensor, y: torch.Tensor, steps: int, seed: int = 0, recipe: Recipe = RECIPE,
                on_epoch: Callable[[int, float, float], None] | None = None,
                on_step: Callable[[int], None] | None = None) -> LeNet:
    """Train a fresh :class:`LeNet` on ``(x, y)`` for ``steps`` optimizer steps.

    Args:
        x: (N, 1, 28, 28) float32 in [-1, 1], N >= ``recipe.batch_size``.
        y: (N,) int64 class indices in [0, 10).
        steps: optimizer steps (see :func:`steps_for`); a new random order of the images
            starts every ``N // batch_size`` steps.
        seed: seeds the initial weights, the image order, the translations and dropout.
        recipe: the training recipe (:data:`RECIPE` unless experimenting).
        on_epoch: called after each full pass with ``(passes done, mean train loss,
            train accuracy)``.
        on_step: called after each step with the number of steps done.

    Returns:
        The trained model, on the CPU, in eval mode.

    Raises:
        ValueError: wrong image shape or range, label count or range, too few images for one
            batch, ``steps`` < 1.
    """
    check_images(x)
    if y.shape != (len(x),):
        raise ValueError(f"y must have shape ({len(x)},), got {tuple(y.shape)}")
    if len(y) and not (0 <= int(y.min()) and int(y.max()) < 10):
        raise ValueError(f"labels must be in [0, 10), got [{int(y.min())}, {int(y.max())}]")
    per_pass = len(x) // recipe.batch_size
    if per_pass < 1:
        raise ValueError(f"need at least {recipe.batch_size} training images (one batch), got {len(x)}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    x, y = x.to(torch.float32), y.long()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = LeNet()
        opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=steps)
        model.train()
        done, passes = 0, 0
        while done < steps:
            perm = torch.randperm(len(x), generator=gen)
            total, correct, loss_sum = 0, 0, 0.0
            for i in range(min(per_pass, steps - done)):
                idx = perm[i * recipe.batch_size:(i + 1) * recipe.batch_size]
                xb, yb = random_shift(x[idx], recipe.shift, gen), y[idx]
                logits = model(xb)
                loss = F.cross_entropy(logits, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                done += 1
                total += len(yb)
                correct += (logits.argmax(1) == yb).sum().item()
                loss_sum += loss.item() * len(yb)
                if on_step is not None:
                    on_step(done)
            passes += 1
            if on_epoch is not None and total:
                on_epoch(passes, loss_sum / total, correct / total)
    return model.eval()


def accuracy(model: LeNet, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
    """Top-1 accuracy of ``model`` on ``x`` (N, 1, 28, 28) in [-1, 1] with labels ``y`` (N,).

    Returns:
        ``(fraction correct in [0, 1], number correct)``.
    """
    _, logits = lenet_outputs(model, x)
    correct = int((logits.argmax(1) == y.to(logits.device)).sum())
    return correct / max(len(y), 1), correct
