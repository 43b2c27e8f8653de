"""Differentiable augmentation (DiffAugment; Zhao et al. 2020, arXiv 2006.10738).

- :mod:`~gancli.augment.spec`: the ``--augment`` value and its policies (torch-free, so
  options are validated before torch is imported).
- :mod:`~gancli.augment.diffaug`: the augmentation itself (:func:`diff_augment`,
  :class:`DiffAugment`), applied to every image D sees.

Nothing is imported here, so ``import gancli.augment`` does not import torch.
"""
