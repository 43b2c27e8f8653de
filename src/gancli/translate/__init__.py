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
- training and evaluation: CycleGAN's update step (:mod:`~gancli.translate.cyclegan`, on the
  base and helpers of :mod:`~gancli.translate.objectives`), PSNR / SSIM / L1 / label
  preservation of the outputs (:mod:`~gancli.translate.quality`);
- using a trained run: :mod:`~gancli.translate.load` (a run's translator) and
  :mod:`~gancli.translate.apply` (image files in, at their own size: ``gan translate``).

``gan train --task inpaint|superres|denoise|colorize|edges|paired|unpaired`` trains with the
networks and data here through the one loop (:mod:`gancli.engine.steps`): pix2pix's update
and losses are :class:`~gancli.engine.steps.TranslateStep`'s (``--arch unet``), CycleGAN's run
through :class:`~gancli.translate.cyclegan.CycleGANStep` (``--arch cyclegan``). User guide:
docs/translation.md. Importing the package imports no torch.
"""
