"""Training options for an anomaly model, with defaults chosen once for any folder of normal
images (nothing here is tuned to one data set)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

# What both sides of an aspect-kept input are rounded to: the autoencoder halves the resolution
# four times, the segmenter three (tests check this against the networks' own size_multiple).
SIZE_MULTIPLE = 16
EXPOSURES = ("none", "gain")  # see AnomalyConfig.exposure


@dataclass
class AnomalyConfig:
    name: str
    normal: str  # folder of normal images
    val_normal: str | None = None  # held-out normal images; default: a split of ``normal``
    val_anomalous: str | None = None  # labelled anomalies: early stop on their AUROC and F1 threshold
    # Any images not from this camera (natural photos, textures): half the synthetic defects take
    # their content from these, as DRAEM's do from a texture data set. None: only the normal images.
    textures: str | None = None
    size: int = 128  # images are resized (stretched) to size x size: 2 CPU cores train this in minutes
    resize: str = "stretch"  # "stretch" to size x size, or "keep-aspect": the shorter side to size
    # "gain": each image is scaled (inside the graph) so that its mean is scoring.EXPOSURE_MEAN, for
    # cameras whose exposure or light changes between photos; "none": images as they come.
    exposure: str = "none"
    channels: int | str = "auto"  # 1, 3, or "auto" (gray when every training image is gray)
    holdout: float = 0.15  # fraction of ``normal`` kept out when there is no ``val_normal``
    map: str = "learned"  # "learned": a segmenter compares image and repair; "error": reconstruction error only
    width: int = 16  # channels of the first encoder stage (doubles per stage)
    latent_channels: int = 64  # channels at the 1/16-resolution bottleneck
    seg_width: int = 16  # channels of the segmenter's first stage ("learned" map)
    batch: int = 16
    patch: int = 0  # train on random crops of this size (both nets are fully convolutional); 0: whole images
    val_images: int = 64  # held-out images (and as many defective copies) scored per evaluation
    steps: int = 3000  # upper bound; early stopping and ``minutes`` usually end sooner
    minutes: float = 0.0  # optional wall-clock budget; 0 = none, so a run is reproducible step for step
    lr: float = 1e-3
    eval_every: int = 200
    patience: int = 6  # evaluations without improvement before stopping
    synthetic_fraction: float = 0.5  # training inputs that get a synthetic defect to repair
    input_noise: float = 0.02  # std of Gaussian noise added to every training input
    # Synthetic defects also of a fifth kind: the surface itself, darker or brighter inside the mask
    # (cracks, stains, shadows), the subtlest change there is; off by default (a trial, docs/ANOMALY.md).
    relight: bool = False
    flips: bool = True  # horizontal/vertical flips as extra normal views
    fpr: float = 0.01  # target false-positive rate for the threshold
    topk: float = 0.0  # image score: mean of the top fraction of the map; 0: its maximum (for "error": 0.01)
    smooth: float = 0.0  # Gaussian smoothing of the map, sigma as a fraction of ``size`` (for "error": 1/32)
    positional: bool = True  # per-pixel normal statistics in the map (fixed camera); off for free-moving views
    seed: int = 0
    split_seed: int | None = None  # seeds the held-out split; None: ``seed`` (members of a fusion share one split)
    threads: int = 2

    @property
    def keep_aspect(self) -> bool:
        return self.resize == "keep-aspect"

    @property
    def holdout_seed(self) -> int:
        return self.seed if self.split_seed is None else self.split_seed

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
