"""Offline signature datasets in their published layouts -> `Sample(path, identity=writer, kind)`.

kind is "genuine" or "skilled" (skilled forgery of `identity`). Writer numbers lose leading zeros ("007" -> "7")
so that a folder name and a file name that spell the same writer agree; BHSig260 writers keep their script
prefix ("B-7", "H-7") because the Bengali and Hindi parts reuse the numbers. Files are found anywhere under the
root (by file name), so an extra parent folder does not matter.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable
from pathlib import Path

from verify.data.sample import Sample, is_image_file
from verify.errors import DatasetError

_ANY_EXT = r"\.(?:png|jpe?g|bmp|tiff?)"
# protocol -> (regex on the file name with groups writer, kind-letter, layout text for errors)
_PATTERNS: dict[str, tuple[re.Pattern[str], str]] = {
    "cedar": (
        re.compile(r"(?P<kind>original|forgeries)_(?P<writer>\d+)_(?P<i>\d+)\.png", re.I),
        "full_org/original_<writer>_<i>.png and full_forg/forgeries_<writer>_<i>.png",
    ),
    "gpds": (
        re.compile(r"(?P<kind>c|cf)-(?P<writer>\d+)-(?P<i>\d+)" + _ANY_EXT, re.I),
        "<writer:03d>/c-<writer:03d>-<i:02d>.jpg (genuine) and cf-<writer:03d>-<i:02d>.jpg (forgeries)",
    ),
    "mcyt": (
        re.compile(r"(?P<writer>\d+)(?P<kind>v|f)(?P<i>\d+)\.bmp", re.I),
        "<writer:04d>/<writer:04d>v<i>.bmp (genuine) and <writer:04d>f<i>.bmp (forgeries)",
    ),
    "bhsig": (
        re.compile(r"(?P<script>[BH])-S-(?P<writer>\d+)-(?P<kind>[GF])-(?P<i>\d+)\.tiff?", re.I),
        "<writer>/B-S-<writer>-G-<ii>.tif (genuine) and B-S-<writer>-F-<ii>.tif (forged); H- for Hindi",
    ),
}
_GENUINE = {"original", "c", "v", "g"}


def _load_pattern(root: Path, protocol: str) -> list[Sample]:
    pattern, layout = _PATTERNS[protocol]
    found: list[tuple[tuple[str, str, int], Sample]] = []
    for path in root.rglob("*"):
        m = pattern.fullmatch(path.name)
        if m is None or not is_image_file(path):
            continue
        writer = str(int(m["writer"]))
        if protocol == "bhsig":
            writer = f"{m['script'].upper()}-{writer}"
        kind = "genuine" if m["kind"].lower() in _GENUINE else "skilled"
        found.append(((writer, kind, int(m["i"])), Sample(path=path, identity=writer, kind=kind)))
    if not found:
        raise DatasetError(f"{root}: no {protocol.upper()} signatures found; expected {layout}")
    found.sort(key=lambda t: (_writer_key(t[0][0]), t[0][1], t[0][2], str(t[1].path)))
    return [s for _, s in found]


def _writer_key(writer: str) -> tuple[str, int]:
    prefix, _, num = writer.rpartition("-")
    return (prefix, int(num)) if num.isdigit() else (writer, 0)


def load_cedar(root: str | os.PathLike[str]) -> list[Sample]:
    """CEDAR: `full_org/original_{writer}_{i}.png`, `full_forg/forgeries_{writer}_{i}.png`."""
    return _load_pattern(_root(root), "cedar")


def load_gpds(root: str | os.PathLike[str]) -> list[Sample]:
    """GPDS: `{writer:03d}/c-{writer:03d}-{i:02d}.jpg` genuine, `cf-...` forgeries."""
    return _load_pattern(_root(root), "gpds")


def load_mcyt(root: str | os.PathLike[str]) -> list[Sample]:
    """MCYT-75: `{writer:04d}/{writer:04d}v{i}.bmp` genuine, `{writer:04d}f{i}.bmp` forgeries."""
    return _load_pattern(_root(root), "mcyt")


def load_bhsig(root: str | os.PathLike[str]) -> list[Sample]:
    """BHSig260: `{writer}/B-S-{writer}-G-{ii}.tif` genuine, `-F-` forged; `H-` files for the Hindi part."""
    return _load_pattern(_root(root), "bhsig")


def load_manifest(root: str | os.PathLike[str]) -> list[Sample]:
    """`<root>/manifest.csv` with columns path, writer, kind (paths relative to root), as the generator writes."""
    base = _root(root)
    manifest = base / "manifest.csv"
    if not manifest.is_file():
        raise DatasetError(f"{base}: no manifest.csv; expected columns path,writer,kind")
    with manifest.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not {"path", "writer", "kind"} <= set(reader.fieldnames or []):
            raise DatasetError(f"{manifest}: columns {reader.fieldnames}; expected path,writer,kind")
        rows = list(reader)
    samples = []
    for lineno, row in enumerate(rows, start=2):
        kind = row["kind"].strip().lower()
        kind = "skilled" if kind in {"forgery", "forged", "skilled"} else kind
        if kind != "genuine" and kind != "skilled":
            raise DatasetError(f"{manifest}:{lineno}: kind {row['kind']!r}; expected genuine or skilled")
        samples.append(Sample(path=base / row["path"], identity=str(row["writer"]).strip(), kind=kind))
    if not samples:
        raise DatasetError(f"{manifest}: no rows")
    return samples


def _root(root: str | os.PathLike[str]) -> Path:
    base = Path(root)
    if not base.is_dir():
        raise DatasetError(f"{base}: not a folder")
    return base


SIGNATURE_PROTOCOLS: dict[str, Callable[[str | os.PathLike[str]], list[Sample]]] = {
    "cedar": load_cedar,
    "gpds": load_gpds,
    "mcyt": load_mcyt,
    "bhsig": load_bhsig,
    "manifest": load_manifest,
}


def load_signature_dataset(root: str | os.PathLike[str], protocol: str) -> list[Sample]:
    """Load a signature dataset by protocol name: "cedar", "gpds", "mcyt", "bhsig" or "manifest"."""
    loader = SIGNATURE_PROTOCOLS.get(protocol.lower())
    if loader is None:
        raise DatasetError(f"unknown signature dataset {protocol!r}; known: {', '.join(SIGNATURE_PROTOCOLS)}")
    return loader(root)
