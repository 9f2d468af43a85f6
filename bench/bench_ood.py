"""Out-of-distribution rejection for the signature model: AUROC and FPR at 95% TPR per kind of OOD input.

In-distribution: held-out synthetic signature scans of writers never seen in training (genuine and skilled
forgeries). Out-of-distribution (never seen in training): face photos, handwritten digits, natural images,
blank and noisy pages, printed text (training/ood_material.py). Scores on the model's embeddings:
class-conditional Gaussians (tied / diagonal / full covariance, Ledoit-Wolf) fitted on training writers, against
two baselines: minus the distance to the nearest training feature, and the norm of the pre-normalisation
embedding; each on the backbone features (before the embedding head: what the deployed gate uses) and on the
L2-normalised embeddings. Also the deployed gate (preprocessing's blank-page rule + the card's OOD threshold):
the share of each kind it rejects.

    python -m bench.bench_ood [--model DIR] [--train DIR] [--n 40]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from training.ood_fit import embed_images
from training.ood_material import ood_material
from verify.data import load_signature_dataset
from verify.io import load_image
from verify.models.defaults import default_model_path
from verify.models.loading import load_model
from verify.models.runtime import crops_to_tensor
from verify.ood import GaussianOODScorer, feature_norm_score, nearest_neighbour_score
from verify.synth import generate_dataset
from verify.verifier import Verifier

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_ood.json"


def fpr_at_tpr(in_scores: np.ndarray, out_scores: np.ndarray, tpr: float = 0.95) -> float:
    y = np.r_[np.ones(len(in_scores)), np.zeros(len(out_scores))]
    fpr, tprs, _ = roc_curve(y, np.r_[in_scores, out_scores])
    return float(fpr[np.searchsorted(tprs, tpr, side="left")])


def _gray(images: list[np.ndarray]) -> list[np.ndarray]:
    return [load_image(im, mode="gray") for im in images]


@torch.inference_mode()
def pre_norm(model, images: list[np.ndarray]) -> np.ndarray:
    """Norm of the head output before L2 normalisation (the feature-norm baseline). [N]"""
    net = model.net
    crops = [model.preprocess(im).image for im in images]
    x = crops_to_tensor(crops, model.card)
    return net.project(net.features(x)).norm(dim=1).numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="signature model (default: the bundled one)")
    parser.add_argument(
        "--train",
        default=str(ROOT / "runs" / "make_models" / "data" / "train"),
        help="the model's training data (re-made synthetically if missing)",
    )
    parser.add_argument("--n", type=int, default=40, help="OOD images per kind")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = load_model(args.model or default_model_path("signature"))
    h, w = 150, 220
    with tempfile.TemporaryDirectory() as tmp:
        train_dir = Path(args.train)
        if not (train_dir / "manifest.csv").is_file():
            train_dir = generate_dataset(Path(tmp) / "train", 40, 8, 0, seed=0, progress=False)
        test_dir = generate_dataset(Path(tmp) / "test", 20, 6, 6, seed=2, progress=False)
        train = [s for s in load_signature_dataset(train_dir, "cedar") if s.kind == "genuine"]
        rng = np.random.default_rng(0)
        train = [train[i] for i in sorted(rng.choice(len(train), size=min(len(train), 800), replace=False))]
        train_imgs = [load_image(s.path, mode="gray") for s in train]
        in_imgs = [load_image(s.path, mode="gray") for s in load_signature_dataset(test_dir, "cedar")]
    material = {k: _gray(v) for k, v in ood_material(h, w, n=args.n, seed=3).items()}
    labels = np.array([s.identity for s in train])
    methods = {}
    for space in ("backbone", "embedding"):  # backbone: features before the head (what the deployed gate uses)
        f_train = embed_images(model, train_imgs, features=space)
        feats = {"in": embed_images(model, in_imgs, features=space)}
        feats.update({k: embed_images(model, v, features=space) for k, v in material.items()})
        for cov in ("tied", "diag", "full"):
            scorer = GaussianOODScorer(covariance=cov).fit(f_train, labels)
            methods[f"gaussian-{cov} ({space})"] = {k: scorer.score(f) for k, f in feats.items()}
        nn_scores = {k: nearest_neighbour_score(f_train, f) for k, f in feats.items()}
        methods[f"nearest-neighbour ({space})"] = nn_scores
    in_norm, out_norm = pre_norm(model, in_imgs), {k: pre_norm(model, v) for k, v in material.items()}
    verifier = Verifier(model)
    rows = []
    for name, scores in methods.items():
        s_in = scores["in"]
        for kind in material:
            s_out = scores[kind]
            y = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
            rows.append(
                {
                    "method": name,
                    "ood": kind,
                    "auroc": float(roc_auc_score(y, np.r_[s_in, s_out])),
                    "fpr@95tpr": fpr_at_tpr(s_in, s_out),
                }
            )
    for kind in material:
        s_in, s_out = feature_norm_score(in_norm[:, None]), feature_norm_score(out_norm[kind][:, None])
        y = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
        rows.append(
            {
                "method": "feature-norm",
                "ood": kind,
                "auroc": float(roc_auc_score(y, np.r_[s_in, s_out])),
                "fpr@95tpr": fpr_at_tpr(s_in, s_out),
            }
        )
    gate = {kind: float(np.mean([p.rejected is not None for p in verifier.probes(v)])) for kind, v in material.items()}
    gate["signatures (in-distribution, should pass)"] = float(
        np.mean([p.rejected is not None for p in verifier.probes(in_imgs)])
    )
    result = {
        "model": model.card.get("name"),
        "fingerprint": model.fingerprint,
        "data": "synthetic signatures of held-out writers (seed 2) vs faces, digits, natural images, "
        "blank/noise pages, printed text",
        "n_in": len(in_imgs),
        "n_out_per_kind": args.n,
        "rows": rows,
        "deployed_gate_rejection_rate": gate,
        "seconds": time.perf_counter() - t0,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    kinds = list(material)
    print(
        f"Model `{result['model']}` ({result['fingerprint']}); in-distribution: {len(in_imgs)} synthetic "
        f"signature scans of unseen writers; {args.n} OOD images per kind. AUROC (FPR at 95% TPR):\n"
    )
    print("| method | " + " | ".join(kinds) + " |")
    print("|---" * (len(kinds) + 1) + "|")
    for method in [*methods, "feature-norm"]:
        cells = [next(r for r in rows if r["method"] == method and r["ood"] == k) for k in kinds]
        print(f"| {method} | " + " | ".join(f"{c['auroc']:.3f} ({c['fpr@95tpr']:.2f})" for c in cells) + " |")
    print("\nDeployed gate (blank-page rule + card threshold), share rejected:\n")
    print("| input | rejected |\n|---|---|")
    for kind, rate in gate.items():
        print(f"| {kind} | {rate:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
