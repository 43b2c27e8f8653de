"""Image-to-image GANs: repair (inpainting, super-resolution, denoising), paired
translation (pix2pix, Isola et al. 2017, arXiv 1611.07004) and unpaired translation
(CycleGAN, Zhu et al. 2017, arXiv 1703.10593).

The networks live here (``networks``: U-Net and ResNet generators, the PatchGAN
discriminator; ``pool``: CycleGAN's history buffer; ``tiling``: running a fully
convolutional generator at any input size); the tasks and their data live elsewhere
in this package. Importing the package does not import torch.
"""
