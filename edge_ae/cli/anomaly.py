"""``edge-ae anomaly``: score images against a model of "normal", and make or check such models.

    edge-ae anomaly [score] INPUT... [-m MODEL] [--report report.csv|.json] [--heatmaps DIR]
    edge-ae anomaly fit --normal DIR -o MY-LINE.onnx
    edge-ae anomaly calibrate -m MODEL --normal DIR -o NEW.onnx
    edge-ae anomaly check -m MODEL --normal DIR

A sub-command group whose default is ``score``: a first word that is not a sub-command's name
is an image, so ``edge-ae anomaly IMAGES...`` scores them, and a folder named like a sub-command
is scored as ``./calibrate``. ``fit``, ``calibrate`` and ``check`` live in their own modules.
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
from edge_ae.cli import anomaly_calibrate, anomaly_check, anomaly_fit
from edge_ae.cli.limits import add_max_pixels, tidy
from edge_ae.cli.options import add_model, add_threads, default_anomaly_model, resolve_threads
from edge_ae.cli.progress import Progress
from edge_ae.files import batch
from edge_ae.files.atomic import write_text_atomic
from edge_ae.files.imageio import read_image, write_image
from edge_ae.files.names import derived_name
from edge_ae.files.output_paths import check_file

REPORT_FIELDS = ("file", "status", "score", "normalized_score", "is_anomaly", "heatmap", "message")
SUBCOMMANDS = ("score", "fit", "calibrate", "check")
GROUP_HELP = ("Sub-commands (each with its own --help; score is the default):\n"
              "  edge-ae anomaly [score] INPUT... [-m MODEL]                  score images\n"
              "  edge-ae anomaly fit --normal DIR -o MY-LINE.onnx             build a detector from normal images\n"
              "  edge-ae anomaly calibrate -m MODEL --normal DIR -o NEW.onnx  new threshold (camera moved)\n"
              "  edge-ae anomaly check -m MODEL --normal DIR                  scores as at calibration?\n"
              "A folder named like a sub-command is scored when written as ./calibrate.")


def with_default_subcommand(argv: list[str]) -> list[str]:
    """``anomaly`` followed by anything but a sub-command's name (an image, an option, --help) is
    ``anomaly score ...``."""
    if len(argv) >= 2 and argv[0] == "anomaly" and argv[1] not in SUBCOMMANDS:
        return ["anomaly", "score", *argv[1:]]
    return argv


def add_parser(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("anomaly", help="score images for anomalies; fit, calibrate or check a model",
                           description="Flag anomalous images and make the models that do.\n\n" + GROUP_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = group.add_subparsers(dest="anomaly_command", required=True, metavar="{score,fit,calibrate,check}")
    p = commands.add_parser(
        "score", prog="edge-ae anomaly [score]", help="score images (the default)",
        description="Score image files, folders or quoted globs with an anomaly model: one line per image,\n"
        "a summary, an optional report, heatmap overlays of the flagged images.\n\n" + GROUP_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or quoted globs")
    add_model(p, "anomaly model", default_help="default: the shipped anomaly model, if only one")
    p.add_argument("--report", type=Path, help="write per-image results to this .csv or .json file")
    p.add_argument("--heatmaps", type=Path, metavar="DIR",
                   help="write heatmap overlays of flagged images here (PNG: a.png -> a-heatmap.png, "
                   "a.jpg -> a-heatmap-jpg.png)")
    p.add_argument("--all-heatmaps", action="store_true", help="with --heatmaps: overlays for every image, not only flagged")
    p.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    add_threads(p)
    add_max_pixels(p)
    p.set_defaults(func=run)
    anomaly_fit.add_parser(commands)
    anomaly_calibrate.add_parser(commands)
    anomaly_check.add_parser(commands)


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
    model = args.model or default_anomaly_model()
    detector = AnomalyDetector(model, threads=resolve_threads(args.threads))  # loads before any file is read
    found, problems = batch.find_inputs(args.inputs, recursive=args.recursive)
    if args.heatmaps is not None:
        batch.check_folder(args.heatmaps, args.inputs, label="--heatmaps folder")
    if args.report is not None:
        check_file(args.report, args.inputs, label="--report", sources=[src for src, _ in found])
    for folder, label in ((args.heatmaps, "--heatmaps folder"), (args.report and args.report.parent, "--report folder")):
        if folder is not None:
            batch.prepare_folder(folder, label=label)
    if args.heatmaps is not None:
        tidy(args.heatmaps)
    if args.report is not None:
        tidy(args.report.parent, names=(args.report.name,))
    # Overlay names keep the image's own suffix where it is not .png (a.jpg -> a-heatmap-jpg.png),
    # so a.jpg and a.png get one each; a clash left (the same file given twice) costs the overlay
    # only, never the score.
    tasks: list[batch.Task] = []
    owner: dict[Path, Path] = {}
    for src, rel in found:
        target = args.heatmaps / derived_name(rel, "heatmap") if args.heatmaps is not None else Path()
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
    # A heatmap asked for and not written is a lost output: the image is scored, the run is not a success.
    unwritten = sum(1 for r in rows if str(r.get("message", "")).startswith("heatmap not written"))
    missing = f", {unwritten} heatmap(s) not written (see above)" if unwritten else ""
    print(f"{done} scored: {flagged} anomalous, {done - flagged} normal, {failed} failed{missing} "
          f"(model {detector.spec.name}, threshold {cal.threshold:.4g}){where}")
    return 1 if failed or unwritten else 0


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
