"""Where outputs may go, checked before any work (docs/BATCH.md, "Where outputs may go").

The purpose is narrow: never write over an input, and never put outputs where a later run over
the same inputs would read them back as inputs. So an output folder may not be a folder input or
inside one (a recursive run over it would take the outputs for photos), nor the folder an input
file or glob lives in (the outputs would land among, and by name onto, the originals), nor inside
a glob's fixed part when the glob reaches into sub-folders ("in/**/*.png", "in/*/x.png"). An
output folder next to input files or a one-level glob is fine: ``cd photos && edge-ae denoise
IMG_0001.jpg -o clean``. Single output files (a report, a recording, an event log) may not be an
input file or lie inside a folder input.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from edge_ae.errors import EdgeAEError
from edge_ae.files.inputs import glob_root, is_glob, reaches_into_subfolders


def _roots(inputs: list[str]) -> list[tuple[Path, str, bool]]:
    """(resolved folder, how to name it, whether its whole tree is input) for each input: a folder
    input and a glob that reaches into sub-folders own their tree; a file and a one-level glob own
    only the files directly in their folder."""
    roots = []
    for item in inputs:
        path = Path(item)
        if is_glob(item):
            roots.append((glob_root(item)[0].resolve(), f"the folder of the glob {item}", reaches_into_subfolders(item)))
        elif path.is_dir():
            roots.append((path.resolve(), f"the input folder {item}", True))
        elif path.is_file():
            # Both the folder the name is in and, for a symlink, the folder of the file it names.
            for folder in {path.absolute().parent.resolve(), path.resolve().parent}:
                roots.append((folder, f"the folder of the input {item}", False))
    return roots


def check_folder(folder: Path, inputs: list[str], *, label: str = "output folder",
                 others: dict[str, Path] | None = None) -> None:
    """Refuse an output folder (``-o``, ``--compare``, ``--heatmaps``, ``--frames``) that is a
    file, an input folder or inside one, the folder of an input file or glob, or inside a glob's
    fixed part when the glob reaches into sub-folders. ``others``: folders of this run it must
    not be (label -> folder)."""
    if folder.exists() and not folder.is_dir():
        # Caught here, before any work, rather than as a bare "File exists" per image.
        raise EdgeAEError(f"{label} {folder} is an existing file: expected a folder (new or existing)")
    resolved = folder.resolve()
    for root, what, whole_tree in _roots(inputs):
        if resolved == root:
            raise EdgeAEError(f"{label} {folder} is {what}: choose another folder (a new one next to it is fine)")
        if whole_tree and root in resolved.parents:
            raise EdgeAEError(f"{label} {folder} is inside {what}, whose later runs would read the outputs "
                              "back as inputs: choose one outside it")
    for other_label, other in (others or {}).items():
        other = other.resolve()
        if resolved == other:
            raise EdgeAEError(f"{label} {folder} is the {other_label} too: choose another")
        if other in resolved.parents or resolved in other.parents:
            # Nested output folders: a before|after picture could take the name of an output
            # (or the reverse) and a later run over the outer one would read the inner one.
            inner, outer = (label, other_label) if other in resolved.parents else (other_label, label)
            raise EdgeAEError(f"{label} {folder}: the {inner} would be inside the {outer}; choose folders side by side")


def check_file(path: Path, inputs: list[str], *, label: str, sources: Iterable[Path] = (),
               others: dict[str, Path] | None = None) -> None:
    """Refuse an output file (``--report``, ``--record``, ``--events``) that is a folder, an
    input file (given, or found in an input folder: ``sources``), or another output of this run."""
    if path.is_dir():
        raise EdgeAEError(f"{label} {path} is a folder: expected a file name")
    resolved = path.resolve()
    given = [Path(item) for item in inputs if not is_glob(item) and Path(item).is_file()]
    for source in [*given, *sources]:
        if source.resolve() == resolved:
            raise EdgeAEError(f"{label} {path} is the input {source}: it would be overwritten; choose another name")
    for other_label, other in (others or {}).items():
        if resolved == other.resolve():
            raise EdgeAEError(f"{label} {path} is the {other_label} too: choose another")


def check_stream_outputs(source: object, *, record: str | Path | None = None, frames: str | Path | None = None,
                         events: str | Path | None = None) -> None:
    """The batch rules for ``edge-ae camera`` / ``edge_ae.Stream``: no output may be the source
    (a video file, or a folder of frames or one of its images), no output folder may be a source
    folder or inside one, and no two outputs may be one. ``events`` brings its snapshot folder
    (``NAME_frames`` beside it) along."""
    if isinstance(source, (str, Path)) and not str(source).strip():
        raise EdgeAEError("--source is empty: give a camera index, 'picamera2', a URL, a video file or a folder")
    text = str(source).strip() if isinstance(source, (str, Path)) else ""
    # As edge_ae.video.sources.open_source reads it: a camera index, picamera2 or a URL is no path.
    is_path = bool(text) and not text.isdigit() and text.lower() != "picamera2" and "://" not in text
    path = Path(text) if is_path else None
    inputs = [str(path)] if path is not None and path.exists() else []
    sources: list[Path] = []
    if path is not None and path.is_dir():
        try:
            sources = [p for p in path.iterdir() if p.is_file()]
        except OSError:
            pass  # the source itself reports an unreadable folder
    folders: dict[str, Path] = {}
    files: dict[str, Path] = {}
    if frames is not None:
        check_folder(Path(frames), inputs, label="--frames folder")
        folders["--frames folder"] = Path(frames)
    if events is not None:
        events = Path(events)
        snapshots = events.with_name(events.stem + "_frames")
        check_folder(snapshots, inputs, label="--events snapshot folder", others=folders)
        check_file(events, inputs, label="--events file", sources=sources, others=folders)
        folders["--events snapshot folder"] = snapshots
        files["--events file"] = events
    if record is not None:
        check_file(Path(record), inputs, label="--record file", sources=sources, others={**folders, **files})


def prepare_folder(folder: Path, *, label: str = "output folder") -> None:
    """Create ``folder`` and prove it writable before any work, so a bad ``-o`` is one line naming
    the folder, not a failure blamed on every input."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgeAEError(f"{label} {folder}: cannot create it ({exc.strerror or exc})") from None
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise EdgeAEError(f"{label} {folder} is not writable ({exc.strerror or exc})") from None


def prepare_output_file(path: Path, *, label: str = "output", overwrite: bool = False) -> None:
    """Check an output file (``-o model.onnx``, ``-o latents.npy``) before any work, so a long run
    never ends in an error about where its result goes: not a folder, not an existing file unless
    ``overwrite``, and a folder that exists or can be created and is writable."""
    if path.is_dir():
        raise EdgeAEError(f"{label} {path} is a folder: expected a file name such as {path / ('NAME' + path.suffix)}")
    if path.exists() and not overwrite:
        raise EdgeAEError(f"{label} {path} exists; pass --overwrite to replace it")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise EdgeAEError(f"{label} {path}: {parent} is a file, not a folder")
            break
    prepare_folder(path.parent, label=f"folder of {label}")
