"""``edge-ae anomaly``: score images against a model of "normal".

    edge-ae anomaly INPUT... [-m MODEL] [--report report.csv|.json] [--heatmaps DIR]

Its sub-commands have parsers of their own (``edge_ae.cli.main`` picks them by the word after
``anomaly``): ``anomaly calibrate`` (anomaly_calibrate.py) and ``anomaly fit`` (anomaly_fit.py).
A folder of images named like one of them is scored as ``./calibrate``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from pathlib import Path

from edge_ae.anomaly.detector import AnomalyDetector, AnomalyResult, draw_overlay
from edge_ae.cli.limits import add_max_pixels, tidy
from edge_ae.cli.progress import Progress
from edge_ae.errors import EdgeAEError
from edge_ae.files import batch
from edge_ae.files.atomic import write_text_atomic
from edge_ae.files.imageio import read_image, write_image
from edge_ae.model.registry import list_models

REPORT_FIELDS = ("file", "status", "score", "normalized_score", "is_anomaly", "heatmap", "message")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "anomaly", help="flag anomalous images ('anomaly calibrate', 'anomaly fit': see their --help)",
        description="Score image files, folders or quoted globs with an anomaly model: one line per image, a "
        "summary, optional report and heatmap overlays of the flagged images.\n\n"
        "Sub-commands (each with its own --help):\n"
        "  edge-ae anomaly calibrate [MODEL] --normal DIR -o NEW.onnx   re-calibrate the threshold (camera moved)\n"
        "  edge-ae anomaly fit --normal DIR -o MY-LINE.onnx             build a detector from normal images\n"
        "A folder named 'calibrate' or 'fit' is scored as ./calibrate or ./fit.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or quoted globs")
    p.add_argument("-m", "--model", help="anomaly model name or .onnx path (default: the shipped anomaly model, if only one)")
    p.add_argument("--report", type=Path, help="write per-image results to this .csv or .json file")
    p.add_argument("--heatmaps", type=Path, metavar="DIR",
                   help="write heatmap overlays of flagged images here (PNG, named after the image plus .png: a.jpg.png)")
    p.add_argument("--all-heatmaps", action="store_true", help="with --heatmaps: overlays for every image, not only flagged")
    p.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    p.add_argument("--threads", type=int, help="inference threads (default: all cores)")
    add_max_pixels(p)
    p.set_defaults(func=run)


def default_model() -> str:
    shipped = list_models("anomaly")
    if len(shipped) != 1:
        names = ", ".join(e.name for e in shipped) or "none"
        raise EdgeAEError(f"choose an anomaly model with -m (shipped anomaly models: {names})")
    return shipped[0].name


def run(args: argparse.Namespace) -> int:
    return run_detect(args)


def write_report(path: Path, rows: list[dict[str, object]], summary: dict[str, object], *, durable: bool = True) -> None:
    if path.suffix.lower() == ".json":
        write_text_atomic(path, json.dumps({"summary": summary, "images": rows}, indent=2) + "\n", durable=durable)
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=REPORT_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in REPORT_FIELDS})
    write_text_atomic(path, buf.getvalue(), durable=durable)


class ReportKeeper:
    """Keeps ``--report`` current while the run goes on: rewritten (atomically) after each image,
    and at the end on every way out, so a crash or a kill loses no finished row. Rewrites are
    spaced so they take at most a tenth of the run when the report grows large."""

    def __init__(self, path: Path | None, detector: AnomalyDetector) -> None:
        self.path = path
        self.detector = detector
        self.rows: list[dict[str, object]] = []
        self._next = 0.0

    def summary(self, *, complete: bool) -> dict[str, object]:
        done = [r for r in self.rows if r["status"] == "done"]
        flagged = sum(1 for r in done if r["is_anomaly"])
        cal = self.detector.calibration
        return {
            "model": self.detector.spec.name, "threshold": cal.threshold, "calibration": cal.method,
            "images": len(done), "anomalous": flagged, "normal": len(done) - flagged, "failed": len(self.rows) - len(done),
            "complete": complete,
        }

    def add(self, row: dict[str, object]) -> None:
        self.rows.append(row)
        if self.path is not None and time.monotonic() >= self._next:
            self.write(complete=False, durable=False)

    def write(self, *, complete: bool, durable: bool = True) -> None:
        """Rewrites during the run skip the flush to disk (a crash of the process cannot lose
        them); the last one, on the way out, is flushed."""
        if self.path is None:
            return
        start = time.monotonic()
        write_report(self.path, self.rows, self.summary(complete=complete), durable=durable)
        now = time.monotonic()
        self._next = now + 9 * (now - start)


def run_detect(args: argparse.Namespace) -> int:
    if args.report is not None and args.report.suffix.lower() not in (".csv", ".json"):
        raise argparse.ArgumentTypeError(f"--report must end in .csv or .json, got {args.report}")
    model = args.model or default_model()
    detector = AnomalyDetector(model, threads=args.threads)  # loads before any file is read
    found, problems = batch.find_inputs(args.inputs, recursive=args.recursive)
    if args.heatmaps is not None:
        batch.check_folder(args.heatmaps, args.inputs, label="--heatmaps folder")
    for folder, label in ((args.heatmaps, "--heatmaps folder"), (args.report and args.report.parent, "--report folder")):
        if folder is not None:
            batch.prepare_folder(folder, label=label)
    if args.heatmaps is not None:
        tidy(args.heatmaps)
    if args.report is not None:
        tidy(args.report.parent, names=(args.report.name,))
    # Overlay names keep the image's own suffix (a.jpg -> a.jpg.png), so a.jpg and a.png get one
    # each; a clash left (the same file given twice) costs the overlay only, never the score.
    tasks: list[batch.Task] = []
    owner: dict[Path, Path] = {}
    for src, rel in found:
        target = args.heatmaps / rel.with_name(rel.name + ".png") if args.heatmaps is not None else Path()
        tasks.append(batch.Task(src, target))
        owner.setdefault(target, src)
    report = ReportKeeper(args.report, detector)
    # Per-image lines are results, so they go to stdout (with the bar when it is a terminal).
    progress = Progress(len(tasks), label="scored ", stream=sys.stdout)
    try:
        for problem in problems:
            progress.note(f"failed: {problem}")
            report.add({"file": problem.item, "status": "failed", "message": str(problem)})
        width = max([len(str(t.source)) for t in tasks] + [10])
        for task in tasks:
            report.add(_score_one(task, detector, args, owner, progress, width))
            progress.advance()
        progress.close()
    finally:
        report.write(complete=len(report.rows) == len(tasks) + len(problems))
    summary = report.summary(complete=True)
    done, flagged, failed = int(summary["images"]), int(summary["anomalous"]), int(summary["failed"])  # type: ignore[call-overload]
    cal = detector.calibration
    rows = report.rows
    where = f"; overlays in {args.heatmaps}" if args.heatmaps is not None and any("heatmap" in r for r in rows) else ""
    print(f"{done} scored: {flagged} anomalous, {done - flagged} normal, {failed} failed "
          f"(model {detector.spec.name}, threshold {cal.threshold:.4g}){where}")
    return 1 if failed else 0


def _score_one(task: batch.Task, detector: AnomalyDetector, args: argparse.Namespace, owner: dict[Path, Path],
               progress: Progress, width: int) -> dict[str, object]:
    """Score one image: its report row, its line; any failure is this image's alone."""
    row: dict[str, object] = {"file": str(task.source)}
    try:
        image = read_image(task.source, max_pixels=args.max_pixels)
        result: AnomalyResult = detector(image)
    except Exception as exc:  # decoder, size or inference: one line, and the batch goes on
        message = batch.failure_message(task.source, exc)
        row.update(status="failed", message=message)
        progress.note(f"failed: {message}")
        return row
    row.update(status="done", score=round(result.score, 6), normalized_score=round(result.normalized_score, 4),
               is_anomaly=result.is_anomaly)
    note = ""
    if args.heatmaps is not None and (result.is_anomaly or args.all_heatmaps):
        if owner[task.target] != task.source:
            note = f"heatmap not written: {task.target} is {owner[task.target]}'s"
        else:
            try:
                write_image(task.target, draw_overlay(image, result))
                row["heatmap"] = str(task.target)
            except Exception as exc:  # an optional output never costs the score
                note = f"heatmap not written: {batch.failure_message(task.target, exc)}"
    if note:
        row["message"] = note
    progress.note(f"{str(task.source):<{width}}  score {result.score:9.4f}  normalized {result.normalized_score:.3f}  "
                  f"{'ANOMALY' if result.is_anomaly else 'normal'}" + (f"  ({note})" if note else ""))
    return row
