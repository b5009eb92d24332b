"""Denoising: the ``Denoiser``, tiling, flip ensembles and the noise-level estimate."""
