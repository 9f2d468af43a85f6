"""Fine-tuning the bundled signature teacher on a user's own writers (`verify train --init`), writer-disjoint.

The independent set's writers are split in half (seeded): `verify train --init assets/models/signature-teacher`
trains on one half (genuine signatures and their forgeries, as a user with labelled scans would), and the other
half scores the teacher before and after, alone and fused with HOG as the default is (single reference, EER).
The real sample is never used.

    python -m bench.bench_finetune [--indep DIR] [--epochs 4] [--steps 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.__main__ import command_line, write_results
from bench.bench_fusion import eers
from bench.bench_signature import _rel, embed, load_set
from training.make_models import FUSED_WEIGHT
from verify.data import load_signature_dataset
from verify.data.splits import split_identities
from verify.models.fused import fuse_embeddings
from verify.models.loading import load_model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_finetune"
TITLE = "Fine-tuning the signature teacher on a user's writers"
TEACHER = ROOT / "assets" / "models" / "signature-teacher"
HOG = ROOT / "assets" / "models" / "signature-hog"


def link_writers(root: Path, writers: set[str], out: Path) -> Path:
    """A CEDAR-layout folder of symlinks to `writers`' images only."""
    for s in load_signature_dataset(root, "cedar"):
        if s.identity in writers:
            dest = out / s.path.parent.name / s.path.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(s.path.resolve())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--indep", type=Path, default=ROOT / "data" / "indep", help="independent set folder")
    parser.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs")
    parser.add_argument("--steps", type=int, default=20, help="steps per epoch")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results path without extension")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    ids = sorted({s.identity for s in load_signature_dataset(args.indep, "cedar")})
    halves = split_identities(ids, {"train": 0.5, "test": 0.5}, 0)
    paths, data = load_set(args.indep, list(halves["test"]))
    hog_emb, _ = embed(load_model(HOG), paths)
    rows: dict[str, dict[str, float]] = {"HOG (classical)": eers(hog_emb, data)}
    with tempfile.TemporaryDirectory() as tmp:
        train = link_writers(args.indep, set(halves["train"]), Path(tmp) / "train")
        run = Path(tmp) / "run"
        sets = [f"epochs={args.epochs}", f"steps_per_epoch={args.steps}", "p=8", "k=4", "early_stopping=0"]
        cmd = [sys.executable, "-m", "verify.cli", "train", "--init", str(TEACHER), "--data", str(train), "--protocol",
               "cedar", "--out", str(run), "--quiet", *[a for s in sets for a in ("--set", s)]]  # fmt: skip
        subprocess.run(cmd, check=True)
        for name, model in (("teacher (bundled)", TEACHER), ("teacher fine-tuned", run)):
            emb, _ = embed(load_model(model), paths)
            rows[name] = eers(emb, data)
            default = fuse_embeddings([emb, hog_emb], [FUSED_WEIGHT, 1.0 - FUSED_WEIGHT])
            rows[f"{name} + HOG (fused, as the default)"] = eers(default, data)
    command = command_line("bench.bench_finetune", argv)
    lines = ["| model | EER skilled | EER random |", "|---|---|---|"]
    lines += [f"| {name} | {r['skilled']:.3f} | {r['random']:.3f} |" for name, r in rows.items()]
    text = "\n".join(lines) + (
        f"\n\nFine-tuned on {len(halves['train'])} writers of the independent set ({_rel(args.indep)}; genuine + "
        f"forgeries, `verify train --init` with {' '.join(sets)}), tested on the other {len(halves['test'])} "
        f"writers, single reference. Fused rows: {FUSED_WEIGHT} x teacher + {1 - FUSED_WEIGHT:.1f} x HOG cosine."
    )
    print(text)
    payload = {"rows": rows, "train_writers": list(halves["train"]), "test_writers": list(halves["test"])}
    write_results(args.out, TITLE, command, text, payload, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
