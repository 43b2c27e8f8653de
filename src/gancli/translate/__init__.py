"""Image-to-image GANs: repair (inpainting, super-resolution, denoising), colorization, edges to
image, paired translation (pix2pix, Isola et al. 2017, arXiv 1611.07004) and unpaired translation
(CycleGAN, Zhu et al. 2017, arXiv 1703.10593).

- networks: :mod:`~gancli.translate.networks` (U-Net and ResNet generators, the PatchGAN
  discriminator; shared parts in :mod:`~gancli.translate.layers`), :mod:`~gancli.translate.pool`
  (CycleGAN's history buffer), :mod:`~gancli.translate.tiling` (a fully convolutional generator
  at any input size: pad to its multiple and crop back, overlapping tiles with blended seams);
- tasks and data: the training corruptions (:mod:`~gancli.translate.corrupt`; hole masks in
  :mod:`~gancli.translate.masks`), datasets of pairs and of two domains
  (:mod:`~gancli.translate.pairs`), the MNIST restyling of the unpaired benchmark
  (:mod:`~gancli.translate.restyle`);
- training and evaluation: the pix2pix and CycleGAN update steps
  (:mod:`~gancli.translate.objectives`, :mod:`~gancli.translate.cyclegan`), PSNR / SSIM / L1 / label preservation of the outputs
  (:mod:`~gancli.translate.quality`).

Work in progress (issue #24): ``gan train --task inpaint|superres|denoise|colorize|edges``
trains pix2pix with the networks and corruptions here (:mod:`gancli.engine.steps`,
``--arch unet``); the update steps of :mod:`~gancli.translate.objectives` are not yet used by
it, and there is no ``gan translate`` command yet (docs/translation-wip.md). Importing the package imports no torch.
"""
