"""Denoiser training for real camera noise (issue 45): noise synthesis and the learned noise-level estimate."""
