"""Face verification latency per stage, and the face / not-a-face gate on scikit-image's lfw_subset.

Run: `python -m bench.bench_face [--runs 30]`. Prints markdown tables and writes bench/results/bench_face.json.

Latency: one verification of a 640x480 JPEG (assets/demo/faces/obama.jpg, cropped and scaled to 640x480)
with the bundled dlib_native model: decode -> detect (dlib HOG, upsample 1) -> align (5 landmarks + chip) ->
embed (dlib ResNet) -> search (dot product against a synthetic gallery of 1000 random unit vectors).
Gate: 100 faces + 100 non-faces of `skimage.data.lfw_subset()` (25x25, upscaled); each signal alone and combined.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import argparse
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from verify.fsutil import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_face.json"
MODEL = ROOT / "assets" / "models" / "face-dlib-native"
PHOTO = ROOT / "assets" / "demo" / "faces" / "obama.jpg"
STAGES = ("decode", "detect", "align", "embed", "search", "total")


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()}-core CPU ({cpu}), Python {platform.python_version()}, 2 threads"


def _test_jpeg() -> bytes:
    image = cv2.imread(str(PHOTO))[:384]  # 512x384 (4:3) with the face
    image = cv2.resize(image, (640, 480), interpolation=cv2.INTER_CUBIC)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def _one_run(model, data: bytes, gallery: np.ndarray) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from verify.preprocess.face import FacePreprocessor, align_face, detect_faces, select_face

    pre = FacePreprocessor(model.card)  # the model's own settings, to time its stages apart
    t = [time.perf_counter()]
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    t.append(time.perf_counter())
    box = select_face(detect_faces(rgb, pre.detector, pre.upsample, pre.max_side), rgb.shape)
    t.append(time.perf_counter())
    chip, _ = align_face(rgb, box, pre.size, pre.padding)
    t.append(time.perf_counter())
    emb = model.embed_crops([chip])
    t.append(time.perf_counter())
    scores = gallery @ emb[0]
    int(np.argmax(scores))
    t.append(time.perf_counter())
    ms = {name: 1000 * (b - a) for name, a, b in zip(STAGES, t[:-1], t[1:], strict=False)}
    ms["total"] = 1000 * (t[-1] - t[0])
    return ms


def latency(runs: int) -> dict[str, dict[str, float]]:
    import torch

    import verify

    torch.set_num_threads(2)
    model = verify.load_model(MODEL)
    data = _test_jpeg()
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(1000, 128)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    _one_run(model, data, gallery)  # warm-up: loads the landmark model
    samples = [_one_run(model, data, gallery) for _ in range(runs)]
    return {
        s: {
            "p50_ms": round(float(np.percentile([r[s] for r in samples], 50)), 2),
            "p95_ms": round(float(np.percentile([r[s] for r in samples], 95)), 2),
        }
        for s in STAGES
    }


def _gate_inputs() -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray]]:
    from skimage.data import lfw_subset

    images = [np.repeat(np.round(a * 255).astype(np.uint8)[..., None], 3, axis=2) for a in lfw_subset()]
    labels = np.r_[np.ones(100), np.zeros(100)]
    # Embedding input: the 25x25 crop with a 25% replicated margin (like a padding-0.25 chip), at 150 px.
    chips = [cv2.resize(cv2.copyMakeBorder(im, 6, 6, 6, 6, cv2.BORDER_REPLICATE), (150, 150)) for im in images]
    return images, labels, chips


def _density_scores(cls: type, emb: np.ndarray, folds: int = 2) -> np.ndarray:
    """Out-of-fold scores: fit on the other folds' faces (faces are rows 0-99), score everything else."""
    scores = np.zeros(len(emb))
    parts = np.array_split(np.random.default_rng(0).permutation(100), folds)
    for i, held in enumerate(parts):
        density = cls().fit(emb[np.concatenate([p for j, p in enumerate(parts) if j != i])])
        scores[held] = density.score(emb[held])
        scores[100:] += density.score(emb[100:]) / folds
    return scores


def gate() -> dict[str, float]:
    from scipy.stats import rankdata
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict

    import verify
    from verify.face_gate import GaussianFaceDensity, KnnFaceDensity, detection_score

    images, y, chips = _gate_inputs()
    det = np.array([detection_score(im) for im in images])
    emb = verify.load_model(MODEL).embed_crops(chips)
    knn, gauss = _density_scores(KnnFaceDensity, emb), _density_scores(GaussianFaceDensity, emb)
    both = np.c_[det, knn]
    lr = cross_val_predict(LogisticRegression(), both, y, cv=5, method="predict_proba")[:, 1]
    return {
        "detection_auroc": roc_auc_score(y, det),
        "detection_found_faces": float((det[:100] > 0).mean()),
        "detection_found_nonfaces": float((det[100:] > 0).mean()),
        "knn_density_auroc": roc_auc_score(y, knn),
        "gaussian_density_auroc": roc_auc_score(y, gauss),
        "rank_mean_det_knn_auroc": roc_auc_score(y, rankdata(det) + rankdata(knn)),
        "logreg_det_knn_auroc_5fold": roc_auc_score(y, lr),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed verifications (default: 30)")
    args = parser.parse_args()
    lat = latency(args.runs)
    gate_res = {k: round(float(v), 4) for k, v in gate().items()}
    print(f"Machine: {_machine()}. Model: face-dlib-resnet-native (dlib). {args.runs} runs, 640x480 JPEG.\n")
    print("| stage | p50 ms | p95 ms |\n|---|---|---|")
    for stage, v in lat.items():
        print(f"| {stage} | {v['p50_ms']:.1f} | {v['p95_ms']:.1f} |")
    print("\nsearch = dot product with 1000 synthetic random unit vectors (in memory).\n")
    print("Face gate on skimage.data.lfw_subset (100 LFW faces + 100 non-faces, 25x25 upscaled):\n")
    print("| signal | value |\n|---|---|")
    for key, value in gate_res.items():
        print(f"| {key} | {value:.4f} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    out = {"machine": _machine(), "runs": args.runs, "latency_ms": lat, "gate_lfw_subset": gate_res}
    atomic_write_json(RESULTS, out, indent=2)


if __name__ == "__main__":
    main()
