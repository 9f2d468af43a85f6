"""Synthetic signature sets of generator v2 on disk, for training and calibrating the bundled models.

CEDAR layout (`full_org/original_{w}_{i}.png`, `full_forg/forgeries_{w}_{i}.png`, writers numbered from 1) plus
`manifest.csv` (path, writer, kind, forgery). Forgeries of a writer are skilled ones (a forger copying the
signature) followed by simple ones (the right name in the forger's own hand); both count as the writer's
forgeries ("skilled" in the manifest's kind, told apart by its forgery column), so training sees both as the
hardest negatives. Every image is fixed by (seed, writer, kind, index), whatever the number of workers.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import shutil
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
from tqdm import tqdm

from verify.errors import ConfigError
from verify.fsutil import atomic_write_bytes

SPEC_FILE = "spec.json"  # the SynthSetSpec a set was written from


@dataclass(frozen=True)
class SynthSetSpec:
    """What one set holds."""

    writers: int  # number of writers
    genuine: int  # genuine signatures per writer
    skilled: int  # skilled forgeries per writer
    simple: int = 0  # simple forgeries per writer
    seed: int = 0  # generator seed; sets with other seeds have other writers
    all_caps_share: float = 0.0  # print-hand writers who sign in capitals (0: generator v2 as the models saw it)
    session_share: float = 0.5  # a writer's images scanned in the writer's own session (`ScanConfig.session_share`)

    def __post_init__(self) -> None:
        counts_ok = self.writers >= 1 and self.genuine >= 1 and self.skilled >= 0 and self.simple >= 0
        if not counts_ok or not 0 <= self.session_share <= 1:
            raise ConfigError(f"invalid synthetic set: {self}")


def _writer_rows(job: tuple[Path, SynthSetSpec, int]) -> list[tuple[str, int, str, str]]:
    """Render and write one writer's images (runs in a worker process); returns its manifest rows."""
    root, spec, w = job
    from verify.synth.generator import NameSignatureGenerator
    from verify.synth.scan import ScanConfig

    cv2.setNumThreads(1)
    scan = ScanConfig(session_share=spec.session_share)
    gen = NameSignatureGenerator(seed=spec.seed, scan=scan, all_caps_share=spec.all_caps_share)
    rows: list[tuple[str, int, str, str]] = []
    plan = [("genuine", i) for i in range(spec.genuine)]
    plan += [("skilled", i) for i in range(spec.skilled)] + [("simple", i) for i in range(spec.simple)]
    n_org = n_forg = 0
    for kind, index in plan:
        image = gen.render(w, kind, index)  # type: ignore[arg-type]
        if kind == "genuine":
            n_org += 1
            rel = f"full_org/original_{w + 1}_{n_org}.png"
        else:
            n_forg += 1
            rel = f"full_forg/forgeries_{w + 1}_{n_forg}.png"
        ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise ConfigError(f"could not encode {rel}")
        (root / rel).write_bytes(png.tobytes())
        rows.append((rel, w + 1, "genuine" if kind == "genuine" else "skilled", "" if kind == "genuine" else kind))
    return rows


def write_synth_set(root: Path | str, spec: SynthSetSpec, workers: int = 1, progress: bool = True) -> Path:
    """Write a v2 set into `root`; returns `root`. Skipped when the set there was written from this spec (its
    manifest and `spec.json` exist and the spec matches); a set from another spec (or of unknown spec) is written
    again, its old images, manifest and spec removed first."""
    root = Path(root)
    record = root / SPEC_FILE
    if (root / "manifest.csv").is_file() and record.is_file() and json.loads(record.read_text()) == asdict(spec):
        return root
    (root / "manifest.csv").unlink(missing_ok=True)  # first: a set stopped half-way never reads as written
    record.unlink(missing_ok=True)
    for sub in ("full_org", "full_forg"):
        shutil.rmtree(root / sub, ignore_errors=True)
        (root / sub).mkdir(parents=True, exist_ok=True)
    jobs = [(root, spec, w) for w in range(spec.writers)]
    rows: list[tuple[str, int, str, str]] = []
    bar = tqdm(total=len(jobs), desc=f"synth {root.name}", unit="writer", disable=not progress)
    for chunk in _run(jobs, workers):
        rows.extend(chunk)
        bar.update(1)
    bar.close()
    atomic_write_bytes(record, json.dumps(asdict(spec), indent=1).encode())
    _write_manifest(root, rows)  # last: the set counts as written once its manifest is there
    return root


def _write_manifest(root: Path, rows: Iterable[Sequence[object]]) -> None:
    """`root`/manifest.csv (path, writer, kind, forgery), written atomically."""
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\n")
    out.writerow(["path", "writer", "kind", "forgery"])
    out.writerows(rows)
    atomic_write_bytes(root / "manifest.csv", text.getvalue().encode())


def _run(jobs: list[tuple[Path, SynthSetSpec, int]], workers: int) -> Iterator[list[tuple[str, int, str, str]]]:
    if workers <= 1:
        yield from map(_writer_rows, jobs)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(_writer_rows, jobs, chunksize=4)


def main(argv: list[str] | None = None) -> int:
    """`python -m training.synth_sets --out DIR ...`: write one set (as make models does, any spec)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m training.synth_sets", description=main.__doc__)
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="set folder: kept when written from the same spec (its spec.json); otherwise its images are "
        "deleted and the set written again",
    )
    parser.add_argument("--writers", type=int, required=True)
    parser.add_argument("--genuine", type=int, default=8)
    parser.add_argument("--skilled", type=int, default=4)
    parser.add_argument("--simple", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all-caps-share", type=float, default=0.0, help="print hands that sign in capitals")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    spec = SynthSetSpec(args.writers, args.genuine, args.skilled, args.simple, args.seed, args.all_caps_share)
    print(write_synth_set(args.out, spec, workers=args.workers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
