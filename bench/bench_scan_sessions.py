"""How much of the synthetic skilled-forgery EER comes from scan variation rather than from the forgers.

The training generator (v2) scans half of a writer's images, genuine and forged, in the writer's own session (same
paper, ink, resolution, scanner) and the other half in sessions drawn per image (`ScanConfig.session_share`
0.5). This bench renders the same held-out writers (seed 1, never trained on) twice, once as the generator does
and once with every image of a writer in its session (share 1.0), and scores the models on both: if skilled EER
fell far on the second set, the limit would be the scan variation a model must ignore; if it hardly moves, the
limit is how close the forgers come to the genuine shape. Single reference per comparison, all writers. Synthetic.

    python -m bench.bench_scan_sessions [--writers 80] [--model DIR ...] [--work DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.__main__ import command_line, write_results
from bench.bench_fusion import eers
from bench.bench_signature import embed, load_set
from training.synth_sets import SynthSetSpec, write_synth_set
from verify.models.loading import load_model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_scan_sessions"
TITLE = "Synthetic skilled forgeries: scan variation or forger?"
MODELS = ("signature-hog", "signature-teacher", "signature-teacher-hog")
SHARES = {"as generated (share 0.5)": 0.5, "one session per writer (share 1.0)": 1.0}


def held_out(writers: int, share: float) -> SynthSetSpec:
    """`writers` held-out writers (seed 1), 8 genuine + 8 skilled each, with `session_share` = `share`."""
    return SynthSetSpec(writers=writers, genuine=8, skilled=8, simple=0, seed=1, session_share=share)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_scan_sessions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=80, help="held-out writers (seed 1) per set")
    parser.add_argument("--model", type=Path, nargs="+", default=[ROOT / "assets" / "models" / m for m in MODELS])
    parser.add_argument(
        "--work", type=Path, default=ROOT / "runs" / "bench_scan_sessions", help="rendered sets (kept per spec)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results path without extension")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    sets = {
        label: load_set(write_synth_set(args.work / f"share-{share}", held_out(args.writers, share), workers=2))
        for label, share in SHARES.items()
    }
    rows = []
    for path in args.model:
        model = load_model(path)
        for label, (paths, data) in sets.items():
            rows.append({"model": path.name, "set": label, **eers(embed(model, paths)[0], data)})
    lines = [
        f"{args.writers} held-out writers of generator v2 (seed 1), 8 genuine + 8 skilled forgeries each, rendered "
        "twice; single-reference EER. Synthetic.",
        "",
        "| model | scans | EER skilled | EER random |",
        "|---|---|---|---|",
        *(f"| {r['model']} | {r['set']} | {r['skilled']:.3f} | {r['random']:.3f} |" for r in rows),
    ]
    text = "\n".join(lines)
    print(text)
    command = command_line("bench.bench_scan_sessions", argv)
    write_results(args.out, TITLE, command, text, {"rows": rows}, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
