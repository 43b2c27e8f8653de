"""Generating images from a trained generator: everything ``gan sample`` makes.

- :mod:`~gancli.generate.sampling`: run a generator in batches, class-grid labels, write
  PNG grids and one file per image; the grid, class-grid and ``--individual`` modes.
- :mod:`~gancli.generate.walks`: latent interpolation (slerp / lerp) and class walks,
  rendered as a grid or an animated GIF (``--interpolate``, ``--class-walk``).
- :mod:`~gancli.generate.timeline`: the training timelapse of a run's stored grids
  (``--timeline``).
- :mod:`~gancli.generate.gif`: animated GIFs of image grids (Pillow only).
- :mod:`~gancli.generate.synthetic`: generated images as a labelled image-folder dataset
  (``--dataset-out``); its manifest is read back by :mod:`gancli.data.manifest`.

The latents and random classes a seed stands for are drawn by :mod:`gancli.seeding`.
Nothing is imported here, so ``import gancli.generate`` does not import torch.
"""
