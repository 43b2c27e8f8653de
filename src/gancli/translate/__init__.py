"""Image-to-image GANs: repair (inpainting, super-resolution, denoising), colorization, edges to
image, paired translation (pix2pix, Isola et al. 2017, arXiv 1611.07004) and unpaired translation
(CycleGAN, Zhu et al. 2017, arXiv 1703.10593). The tasks and their data live here: the training
corruptions (:mod:`~gancli.translate.corrupt`; hole masks in :mod:`~gancli.translate.masks`),
datasets of pairs and of two domains (:mod:`~gancli.translate.pairs`), the MNIST restyling of the
unpaired benchmark (:mod:`~gancli.translate.restyle`); the networks (U-Net, PatchGAN, ResNet
generators) are in ``networks.py``. Importing the package imports no torch.
"""
