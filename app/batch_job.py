"""Batch jobs of the web app: a pairs CSV + a zip of images (or an allowed server folder) -> results + report.

Each job works in its own folder under the service's work folder; the zip is checked and extracted there
(`app.zipsafe`), every image path of the CSV must stay inside the images folder, and the batch itself is
`verify.batch.run_batch`. Only the last few job folders are kept.
"""

from __future__ import annotations

import shutil
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from app.wording import scrub_paths
from app.zipsafe import ZipLimits, clear_folder, safe_extract
from verify.decision import GateMode
from verify.errors import ConfigError, DatasetError, VerifyError
from verify.fsutil import atomic_write_text

if TYPE_CHECKING:
    from app.service import VerifyService

_IMAGE_COLUMNS = {"pairs": ["reference", "questioned"], "claims": ["questioned", "claimed_identity"]}
MAX_CSV_BYTES = 5 * 2**20
MAX_ROWS = 10_000
KEEP_JOBS = 5


def _upload_path(value: Any, what: str) -> Path:
    """The local path of an uploaded file (a path string or an object with `.name` / `.path`)."""
    if value is None or value == "":
        raise ConfigError(f"upload the {what}")
    path = Path(str(getattr(value, "path", None) or getattr(value, "name", None) or value))
    if not path.is_file():
        raise ConfigError(f"{path.name}: the uploaded {what} is missing; upload it again")
    return path


def _safe_name(name: str) -> str:
    """An uploaded file's name, usable as a file name here (its own name in messages)."""
    cleaned = "".join(c if c.isalnum() or c in "._- " else "_" for c in name).strip(" .")
    return cleaned[:100] or "pairs.csv"


class BatchJobs:
    """Runs batch jobs in folders under `work_dir`; `admin_root` (or None) is the server folder jobs may read."""

    def __init__(self, work_dir: Path, admin_root: str | Path | None = None, limits: ZipLimits | None = None) -> None:
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.admin_root = None if admin_root is None else Path(admin_root).resolve()
        self.limits = limits or ZipLimits()
        self._lock = threading.Lock()

    def _images_root(self, job: Path, images_zip: Any, images_folder: str | None) -> Path:
        if images_zip not in (None, ""):
            root = job / "images"
            safe_extract(_upload_path(images_zip, "zip of images"), root, self.limits)
            return root
        if images_folder and images_folder.strip():
            if self.admin_root is None:
                raise ConfigError("server folders are disabled; upload a zip of the images (or start --admin-folders)")
            root = (self.admin_root / images_folder.strip()).resolve()
            if not root.is_relative_to(self.admin_root) or not root.is_dir():
                raise ConfigError(f"{images_folder}: not a folder under the allowed server folder {self.admin_root}")
            return root
        raise ConfigError("upload a zip of the images the CSV names (or give a server folder)")

    def _check_paths(self, csv: Path, root: Path) -> Any:
        from verify.batch import read_batch_input

        data = read_batch_input(csv, root)
        if len(data.frame) > MAX_ROWS:
            raise DatasetError(f"{csv.name}: {len(data.frame)} rows, over the limit of {MAX_ROWS} for the web app")
        real_root = root.resolve()
        for i in range(len(data.frame)):
            for image in data.images(i):
                if not Path(image).resolve().is_relative_to(real_root):
                    raise DatasetError(
                        f"{csv.name}, row {i + 1}: {image} is outside the uploaded images; use paths relative "
                        "to the zip's top folder"
                    )
        return data

    def run(
        self,
        service: VerifyService,
        pairs_csv: Any,
        images_zip: Any,
        images_folder: str | None,
        modality: str,
        progress: bool,
        gate_mode: GateMode = "reject",
    ) -> dict[str, Any]:
        """One job: see `VerifyService.batch`."""
        from verify.batch import BatchConfig, run_batch

        csv_in = _upload_path(pairs_csv, "pairs CSV")
        if csv_in.stat().st_size > MAX_CSV_BYTES:
            raise DatasetError(f"{csv_in.name}: over the limit of {MAX_CSV_BYTES // 2**20} MB for a pairs CSV")
        job = self._new_job()
        root = job / "images"
        try:
            csv = job / "input" / _safe_name(csv_in.name)  # messages name the user's file, not "pairs.csv"
            csv.parent.mkdir()
            shutil.copyfile(csv_in, csv)
            root = self._images_root(job, images_zip, images_folder)
            data = self._check_paths(csv, root)
            first = next((im[0] for i in range(len(data.frame)) if (im := data.images(i))), None)
            modality = service.resolve_modality(modality, first if first and Path(first).is_file() else None)
            verifier = service.verifier(modality, gate_mode)
            gallery = service.gallery(modality) if data.mode == "claims" else None
            config = BatchConfig(pairs=csv, out=job / "results" / f"{csv.stem}.results.csv", images_root=root)
            config.out.parent.mkdir()
            with service.lock(modality):
                summary = run_batch(verifier, config, gallery=gallery, progress=progress)
        except VerifyError as exc:
            clear_folder(job)
            raise type(exc)(scrub_paths(str(exc), [root, job])) from exc
        except BaseException:
            clear_folder(job)
            raise
        rows = pd.read_csv(summary.out, dtype=str, keep_default_na=False)
        if "error" in rows:  # the downloads say what the page says: paths inside the upload, not the server's
            rows["error"] = rows["error"].map(lambda e: scrub_paths(e, [root, job]))
            atomic_write_text(summary.out, rows.to_csv(index=False))
        report = summary.report
        report_text = "" if report is None else scrub_paths(report.read_text(), [root, job])
        if report is not None:
            atomic_write_text(report, report_text)
        pairs = [[*data.images(i), None, None][:2] for i in range(len(data.frame))]
        return {
            "summary": {**summary.to_dict(), "modality": modality},
            "rows": rows,
            "csv": summary.out,
            "report": report,
            "report_text": report_text,
            "images": [(p[0], p[1]) for p in pairs],
            "image_columns": _IMAGE_COLUMNS[data.mode],
        }

    def _new_job(self) -> Path:
        with self._lock:
            jobs = sorted(self.work_dir.glob("batch-*"), key=lambda p: p.stat().st_mtime)
            for old in jobs[: max(0, len(jobs) - KEEP_JOBS + 1)]:
                clear_folder(old)
            job = self.work_dir / f"batch-{uuid.uuid4().hex[:12]}"
            job.mkdir()
            return job
