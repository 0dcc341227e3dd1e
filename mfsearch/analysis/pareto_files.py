"""What `mfsearch pareto` leaves behind: the front as JSON and CSV, the PNG and HTML plots in a
folder, and the same files plus the hypervolumes logged to the sweep's parent run in MLflow."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

from ..tracking import MlflowRun
from .fronts import ParetoReport
from .plots import write_html, write_png

ARTIFACT_DIR = "pareto"   # in the sweep run's artifacts
FILES = ("front.json", "front.csv", "pareto.png", "pareto.html")


@dataclasses.dataclass(frozen=True)
class ParetoFiles:
    json: Path
    csv: Path
    png: Path
    html: Path

    def all(self) -> list[Path]:
        return [self.json, self.csv, self.png, self.html]


def write_files(report: ParetoReport, out: Path) -> ParetoFiles:
    """The four files in ``out`` (created; files of an earlier run there are replaced)."""
    out.mkdir(parents=True, exist_ok=True)
    files = ParetoFiles(out / "front.json", out / "front.csv", out / "pareto.png", out / "pareto.html")
    files.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    files.csv.write_text(csv_text(report))
    write_png(report, files.png)
    write_html(report, files.html)
    return files


def csv_text(report: ParetoReport) -> str:
    rows = report.csv_rows()
    columns: list[str] = []
    for row in rows:  # the union of the columns: each front has its own cost column
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def hypervolume_metrics(report: ParetoReport) -> dict[str, float]:
    """``pareto/hv_macs``, ``pareto/hv_macs_baselines``, ``pareto/front_size_macs``, ... and the fidelity."""
    out: dict[str, float] = {}
    for f in report.fronts:
        out[f"pareto/hv_{f.axis.key}"] = f.hypervolume
        out[f"pareto/hv_{f.axis.key}_baselines"] = f.hypervolume_baselines
        out[f"pareto/front_size_{f.axis.key}"] = len(f.members)
        out["pareto/fidelity_epochs"] = f.fidelity
    return out


def log_to_sweep(report: ParetoReport, files: ParetoFiles) -> None:
    """Attach the files (under ``pareto/``) and the hypervolumes to the sweep's parent run."""
    run = MlflowRun.attach(report.sweep.tracking_uri, report.sweep.name, report.sweep.parent_run_id)
    run.log_metrics(hypervolume_metrics(report), step=0)
    for path in files.all():
        run.log_artifact(path, ARTIFACT_DIR)
