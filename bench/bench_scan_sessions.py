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

import cv2

from bench.__main__ import write_results
from bench.bench_fusion import eers
from bench.bench_signature import embed, load_set
from verify.models.loading import load_model
from verify.synth.generator import NameSignatureGenerator
from verify.synth.scan import ScanConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_scan_sessions"
TITLE = "Synthetic skilled forgeries: scan variation or forger?"
MODELS = ("signature-hog", "signature-teacher", "signature-teacher-hog")
SHARES = {"as generated (share 0.5)": 0.5, "one session per writer (share 1.0)": 1.0}


def render_set(root: Path, writers: int, share: float, genuine: int = 8, skilled: int = 8) -> Path:
    """Held-out writers (seed 1) in CEDAR layout with `session_share` = `share` (kept when already written)."""
    if (root / "done").is_file():
        return root
    for sub in ("full_org", "full_forg"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    gen = NameSignatureGenerator(seed=1, scan=ScanConfig(session_share=share))
    for w in range(writers):
        plan = [("genuine", "full_org/original", i) for i in range(genuine)]
        plan += [("skilled", "full_forg/forgeries", i) for i in range(skilled)]
        for kind, stem, i in plan:
            image = gen.render(w, kind, i)  # type: ignore[arg-type]
            cv2.imwrite(str(root / f"{stem}_{w + 1}_{i + 1}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (root / "done").write_text(f"writers={writers} share={share}\n")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_scan_sessions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=80, help="held-out writers (seed 1) per set")
    parser.add_argument("--model", type=Path, nargs="+", default=[ROOT / "assets" / "models" / m for m in MODELS])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_scan_sessions", help="rendered sets")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results path without extension")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    sets = {label: load_set(render_set(args.work / f"share-{share}-w{args.writers}", args.writers, share))
            for label, share in SHARES.items()}  # fmt: skip
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
    command = "python -m bench.bench_scan_sessions " + " ".join(argv if argv is not None else sys.argv[1:])
    write_results(args.out, TITLE, command.strip(), text, {"rows": rows}, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
