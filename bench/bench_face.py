"""Face verification latency: a pair of demo photos, per stage, and against face_recognition; the face gate.

Run: `python -m bench.bench_face [--rounds 2] [--runs 30]`. Prints markdown tables and writes
bench/results/bench_face.json.

Pairs: `Verifier.match(a, b)` with the default face model (face-resnet: dlib's ResNet ported to PyTorch) on every
pair of the 7 demo photos (assets/demo/faces, 21 pairs), from the files, embedding cache off (every call decodes,
detects, aligns and embeds both photos). Beside it, on the same pairs and in the same loop (so load from other
processes falls on all alike): face_recognition 1.3 doing the same job its README shows (`load_image_file` and
`face_encodings` for each photo, match when `face_distance <= 0.6`), if installed
(`pip install --no-deps face_recognition`: its dlib requirement is met by dlib-bin); the same verifier with
preprocessing one photo after the other and with torch on 2 threads for the pair (what this code did before); and
the card option `upsample: 0` (not the card's setting: its boxes differ, so scores move). Each round times every
pair once with each; p50/p95 over all calls after one warm-up round. The 1-minute load average is read before and
after (the CPU is shared).

Stages: one 640x480 JPEG (assets/demo/faces/obama.jpg, cropped and scaled) with the default model: decode ->
detect (dlib HOG, upsample 1) -> align (5 landmarks + chip) -> embed (one chip) -> search (dot product against
1000 random unit vectors).
Gate: 100 faces + 100 non-faces of `skimage.data.lfw_subset()` (25x25, upscaled); each signal alone and combined,
with the dlib-native model's embeddings.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import argparse
import itertools
import json
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import cv2
import numpy as np

from verify.fsutil import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_face.json"
MODEL = ROOT / "assets" / "models" / "face-dlib-native"  # the gate's embeddings
DEFAULT_MODEL = ROOT / "assets" / "models" / "face-resnet"  # the default face model: latency
DEMO = ROOT / "assets" / "demo" / "faces"
PHOTO = DEMO / "obama.jpg"
FR_TOLERANCE = 0.6  # face_recognition's compare_faces default
STAGES = ("decode", "detect", "align", "embed", "search", "total")


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()}-core CPU ({cpu}), Python {platform.python_version()}"


def _test_jpeg() -> bytes:
    image = np.asarray(cv2.imread(str(PHOTO)))[:384]  # 512x384 (4:3) with the face
    image = cv2.resize(image, (640, 480), interpolation=cv2.INTER_CUBIC)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def _one_run(model, data: bytes, gallery: np.ndarray) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from verify.preprocess.face import FacePreprocessor, align_face, detect_faces, select_face

    pre = FacePreprocessor(model.card)  # the model's own settings, to time its stages apart
    t = [time.perf_counter()]
    rgb = cv2.cvtColor(np.asarray(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)), cv2.COLOR_BGR2RGB)
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
    model = verify.load_model(DEFAULT_MODEL)
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


def _demo_photos() -> list[Path]:
    return sorted(p for p in DEMO.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def _sequential(fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    return [fn(x) for x in items]


@contextmanager
def _as_before() -> Iterator[None]:
    """The verifier as it was: preprocessing one photo after the other, the pair embedded on torch's 2 threads."""
    import verify.models.dlib_resnet as dlib_resnet
    import verify.verifier as verifier_module

    with (
        mock.patch.object(verifier_module, "_map_concurrently", _sequential),
        mock.patch.object(dlib_resnet, "SERIAL_BATCH", 0),
    ):
        yield


def _model_with(folder: Path, **preprocessing: Any) -> Path:
    """A copy of the default model whose card's preprocessing has these values."""
    target = folder / DEFAULT_MODEL.name
    shutil.copytree(DEFAULT_MODEL, target)
    card = json.loads((target / "model.json").read_text())
    card["preprocessing"].update(preprocessing)
    (target / "model.json").write_text(json.dumps(card, indent=2))
    return target


def _verifier_runner(verifier: Any, before: bool = False) -> Callable[[Path, Path], tuple[str, float | None]]:
    def run(a: Path, b: Path) -> tuple[str, float | None]:
        if before:
            with _as_before():
                d = verifier.match(a, b)
        else:
            d = verifier.match(a, b)
        return d.decision, d.score

    return run


def _face_recognition_runner() -> Callable[[Path, Path], tuple[str, float | None]] | None:
    try:
        import face_recognition as fr
    except ImportError:
        return None

    def run(a: Path, b: Path) -> tuple[str, float | None]:
        ea, eb = (fr.face_encodings(fr.load_image_file(str(p))) for p in (a, b))
        if not ea or not eb:
            return "rejected", None
        distance = float(fr.face_distance([ea[0]], eb[0])[0])
        return ("match" if distance <= FR_TOLERANCE else "no match"), distance

    return run


def pair_latency(rounds: int) -> dict[str, Any]:
    """Every verifier on every pair of demo photos, interleaved; see the module docstring."""
    import torch

    import verify
    from verify.verifier import Verifier

    torch.set_num_threads(2)
    pairs = list(itertools.combinations(_demo_photos(), 2))
    with tempfile.TemporaryDirectory() as tmp:
        ours = Verifier(verify.load_model(DEFAULT_MODEL), cache_size=0)
        upsample0 = Verifier(verify.load_model(_model_with(Path(tmp), upsample=0)), cache_size=0)
        runners = {
            "this code (face-resnet)": _verifier_runner(ours),
            "before: one photo after the other, torch 2 threads": _verifier_runner(ours, before=True),
            "option upsample 0 (not the card's setting)": _verifier_runner(upsample0),
        }
        fr_run = _face_recognition_runner()
        if fr_run is not None:
            runners["face_recognition 1.3 (dlib)"] = fr_run
        times: dict[str, list[float]] = {name: [] for name in runners}
        cpu: dict[str, list[float]] = {name: [] for name in runners}
        answers: dict[str, dict[str, tuple[str, float | None]]] = {name: {} for name in runners}
        load_before = os.getloadavg()[0]
        for round_ in range(rounds + 1):  # round 0 warms up (models, detectors, threads)
            for a, b in pairs:
                for name, run in runners.items():
                    start, start_cpu = time.perf_counter(), time.process_time()
                    answers[name][f"{a.name}|{b.name}"] = run(a, b)
                    if round_:
                        times[name].append(1000 * (time.perf_counter() - start))
                        cpu[name].append(1000 * (time.process_time() - start_cpu))
        load_after = os.getloadavg()[0]
    return _pair_summary(times, cpu, answers, fr_run is not None, (len(pairs), rounds), (load_before, load_after))


def _pair_summary(
    times: dict[str, list[float]],
    cpu: dict[str, list[float]],
    answers: dict[str, dict[str, tuple[str, float | None]]],
    has_fr: bool,
    size: tuple[int, int],
    loads: tuple[float, float],
) -> dict[str, Any]:
    names = list(times)
    ours, fr = names[0], names[-1] if has_fr else None
    rows = {}
    for name in names:
        p50 = float(np.percentile(times[name], 50))
        row: dict[str, Any] = {
            "p50_ms": round(p50, 1),
            "p95_ms": round(float(np.percentile(times[name], 95)), 1),
            "cpu_p50_ms": round(float(np.percentile(cpu[name], 50)), 1),
        }
        if fr is not None:
            row["speedup_vs_face_recognition"] = round(float(np.percentile(times[fr], 50)) / p50, 2)
            row["same_decisions_as_face_recognition"] = sum(
                answers[name][k][0] == answers[fr][k][0] for k in answers[name]
            )
        if name != fr:
            row["max_score_change_vs_this_code"] = max(
                abs((answers[name][k][1] or 0.0) - (answers[ours][k][1] or 0.0)) for k in answers[name]
            )
        rows[name] = row
    return {
        "pairs": size[0],
        "rounds": size[1],
        "load_average_1min_before_after": [round(x, 2) for x in loads],
        "verifiers": rows,
        "decisions": {k: v[0] for k, v in answers[ours].items()},
    }


def _print_pairs(res: dict[str, Any]) -> None:
    load = res["load_average_1min_before_after"]
    print(
        f"\nVerify a pair: {res['pairs']} pairs of the demo photos x {res['rounds']} rounds, embedding cache off; "
        f"1-min load average {load[0]} before, {load[1]} after (2 cores, shared).\n"
    )
    print(
        "| verifier | p50 ms | p95 ms | CPU ms (p50) | x face_recognition (p50) "
        "| same decisions as face_recognition | max score change |\n|---|---:|---:|---:|---:|---:|---:|"
    )
    for name, row in res["verifiers"].items():
        speed = f"{row['speedup_vs_face_recognition']:.2f}x" if "speedup_vs_face_recognition" in row else "-"
        same = row.get("same_decisions_as_face_recognition")
        agree = f"{same}/{res['pairs']}" if same is not None else "-"
        change = f"{row['max_score_change_vs_this_code']:.2g}" if "max_score_change_vs_this_code" in row else "-"
        print(
            f"| {name} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['cpu_p50_ms']:.1f} | {speed} | {agree} "
            f"| {change} |"
        )
    print(
        "\nCPU ms: processor time of the whole process per pair, all threads (what a pair costs when cores are"
        " scarce). Score change: largest |cosine - this code's cosine| (face_recognition reports distances)."
    )


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
    from bench.face_gate import GaussianFaceDensity, KnnFaceDensity, detection_score

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
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds over all demo pairs (default: 2)")
    parser.add_argument("--runs", type=int, default=30, help="timed single-photo runs for the stages (default: 30)")
    args = parser.parse_args()
    pairs = pair_latency(args.rounds)
    print(f"Machine: {_machine()}.")
    _print_pairs(pairs)
    lat = latency(args.runs)
    gate_res = {k: round(float(v), 4) for k, v in gate().items()}
    print(f"\nStages of one photo (640x480 JPEG), face-resnet, {args.runs} runs:\n")
    print("| stage | p50 ms | p95 ms |\n|---|---|---|")
    for stage, v in lat.items():
        print(f"| {stage} | {v['p50_ms']:.1f} | {v['p95_ms']:.1f} |")
    print("\nsearch = dot product with 1000 synthetic random unit vectors (in memory).\n")
    print("Face gate on skimage.data.lfw_subset (100 LFW faces + 100 non-faces, 25x25 upscaled):\n")
    print("| signal | value |\n|---|---|")
    for key, value in gate_res.items():
        print(f"| {key} | {value:.4f} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    out = {
        "machine": _machine(),
        "pairs": pairs,
        "runs": args.runs,
        "latency_ms": lat,
        "gate_lfw_subset": gate_res,
    }
    atomic_write_json(RESULTS, out, indent=2)


if __name__ == "__main__":
    main()
