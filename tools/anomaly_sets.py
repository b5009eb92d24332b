"""The magnetic-tile anomaly data as the benchmark and the validation split read it: where it is,
the listing of its test images, and the fixed validation split of the anomaly v3 design; below
both tools/bench_anomaly.py and tools/split_anomalies.py, which use them."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DATA = ROOT.parent / "shared" / "data" / "anomaly" / "magnetic_tile" / "tile"
# The validation split of the anomaly v3 design (docs/experiments/2026-12-06-anomaly-v3.md;
# tools/split_anomalies.py draws it): every design choice was made on these defects and on held-out
# train/good images; the figures of record are on the rest of the test split.
VALIDATION_FRACTION = 0.3
VALIDATION_SEED = 0


def test_set(data: Path) -> list[tuple[Path, str, Path | None]]:
    """(image, defect type or 'good', mask path or None) for every test image."""
    items = []
    for folder in sorted(p for p in (data / "test").iterdir() if p.is_dir()):
        for image in sorted(folder.iterdir()):
            if image.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"):
                continue
            mask = data / "ground_truth" / folder.name / f"{image.stem}_mask.png"
            items.append((image, folder.name, mask if mask.is_file() else None))
    return items
