"""Training: config, augmentation, the CLI end to end (tiny), resume, determinism, fine-tuning, 2-process DDP."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from training.augment import create_augment
from training.config import TrainConfig, load_config, parse_overrides
from training.loop import lr_factor
from verify.errors import ConfigError

VERIFY_BIN = str(Path(sys.executable).parent / "verify")
TINY = [
    "backbone=test_resnet", "height=32", "width=48", "dim=16", "p=4", "k=3", "steps_per_epoch=2",
    "early_stopping=0", "warmup_epochs=0",
]  # fmt: skip
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # 2 shared cores: one thread per process is fastest


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _sets(*extra: str) -> list[str]:
    return [arg for item in (*TINY, *extra) for arg in ("--set", item)]


def _run(args: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=ENV, timeout=timeout)


@pytest.fixture(scope="module")
def sig_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from verify.synth import generate_dataset

    root = tmp_path_factory.mktemp("train_data") / "sig"
    return generate_dataset(root, writers=10, genuine=5, forgeries=2, seed=0, height=64, width=96, progress=False)


@pytest.fixture(scope="module")
def cli_run(sig_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    run = tmp_path_factory.mktemp("runs") / "run"
    proc = _run(
        [VERIFY_BIN, "train", "--data", str(sig_data), "--out", str(run), "--quiet", "--json", *_sets("epochs=1")]
    )
    assert proc.returncode == 0, proc.stderr
    return run, json.loads(proc.stdout)


def _tiny_config(**kw) -> TrainConfig:
    return load_config(None, [*TINY, "epochs=1", *(f"{k}={v}" for k, v in kw.items())])


# --- config ----------------------------------------------------------------------------------------------------


def test_config_overrides_and_validation(tmp_path):
    assert parse_overrides(["lr=1e-3", "loss_params.margin=0.3", "miner=semihard"]) == {
        "lr": "1e-3", "loss_params": {"margin": 0.3}, "miner": "semihard",
    }  # fmt: skip
    (tmp_path / "c.yaml").write_text("epochs: 3\nloss_params: {margin: 0.1}\nmodality: face\n")
    cfg = load_config(tmp_path / "c.yaml", ["lr=1e-3", "loss_params.squared=false"])
    assert cfg.lr == pytest.approx(1e-3) and cfg.epochs == 3
    assert cfg.loss_params == {"margin": 0.1, "squared": False}
    assert (cfg.height, cfg.width, cfg.channels, cfg.preprocessing) == (112, 112, 3, "face")
    for bad, match in [
        (["epochs=0"], "epochs"),
        (["lernrate=1"], "unknown config key"),
        (["lr=fast"], "lr must be a float"),
        (["amp=3"], "amp must be true or false"),
        (["loss=arcface"], "unknown loss"),
        (["optimizer"], "key=value"),
    ]:
        with pytest.raises(ConfigError, match=match):
            load_config(None, bad)


def test_lr_warmup_then_cosine():
    cfg = _tiny_config(epochs=4, warmup_epochs=1, scheduler="cosine")
    f = [lr_factor(cfg, s, 10) for s in range(40)]
    assert f[0] < f[5] < f[9] <= 1.0  # warm-up rises
    assert f[10] == pytest.approx(1.0) and f[39] < 0.01  # cosine decays to ~0
    assert all(a >= b for a, b in itertools.pairwise(f[10:]))


# --- augmentation ------------------------------------------------------------------------------------------------


def test_augmentations_keep_shape_and_vary():
    rng = np.random.default_rng(0)
    sig = np.full((32, 48), 255, np.uint8)
    sig[14:18, 8:40] = 0  # a dark stroke
    aug = create_augment("signature", np.random.default_rng(1))
    outs = [aug(sig) for _ in range(8)]
    assert all(o.shape == sig.shape and o.dtype == np.uint8 for o in outs)
    assert any(not np.array_equal(o, sig) for o in outs)
    assert np.array_equal(create_augment("signature", rng, strength=0)(sig), sig)
    for page in (sig, 255 - sig):  # dark ink on paper, or the preprocessor's bright ink on black
        assert all(np.array_equal(aug(page)[[0, -1]][:, [0, -1]], page[[0, -1]][:, [0, -1]]) for _ in range(8))
    face = rng.integers(0, 255, size=(32, 32, 3), dtype=np.uint8)
    faug = create_augment("face", np.random.default_rng(2))
    assert all(faug(face).shape == face.shape for _ in range(4))
    with pytest.raises(ConfigError):
        create_augment("iris", rng)


def test_validation_pairs_are_verify_evals_pairs():
    from training.validation import pair_metrics, score_pairs
    from verify.data.sample import Sample
    from verify.eval.pairs import sample_pairs

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(60, 4))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    samples = [Sample(Path(f"{i}.png"), str(i // 6), "genuine" if i % 6 < 4 else "skilled") for i in range(60)]
    got = score_pairs(emb, samples, max_impostor_pairs=10_000)
    paths, table, _ = sample_pairs(samples, calibration_fraction=0.0, seed=0)
    row = {p: int(p.stem) for p in paths}  # paths are sorted by name: map each back to its sample
    for kind in ("genuine", "random", "skilled"):
        pairs = table[table["kind"] == kind]
        expected = [emb[row[paths[a]]] @ emb[row[paths[b]]] for a, b in zip(pairs["a"], pairs["b"], strict=True)]
        np.testing.assert_allclose(np.sort(got[kind]), np.sort(expected), err_msg=kind)
    every_cross_pair = 40 * 36 // 2  # the old validation scored all of them; verify eval samples 50 per writer
    assert 0 < len(got["random"]) < every_cross_pair and len(got["skilled"]) == 10 * 4 * 2
    assert len(score_pairs(emb, samples, max_impostor_pairs=100)["random"]) == 100  # the cap holds
    m = {k: pair_metrics(got, k) for k in ("auto", "eer_random", "eer_skilled", "eer_mean")}
    assert m["auto"]["val_eer"] == m["eer_skilled"]["val_eer"] == m["auto"]["eer_skilled"]
    assert m["eer_random"]["val_eer"] == m["auto"]["eer_random"]
    assert m["eer_mean"]["val_eer"] == pytest.approx((m["auto"]["eer_random"] + m["auto"]["eer_skilled"]) / 2)


def test_validation_eer_equals_verify_eval(sig_data, tiny_model, monkeypatch):
    """Training validation and `verify eval --calibration-fraction 0` give one EER on the same images and model."""
    from training.data import build_crop_set, load_samples
    from training.validation import embed_crop_set, validate
    from verify.eval.run import evaluate
    from verify.models.loading import load_model

    model = load_model(tiny_model, device="cpu")
    samples = load_samples(sig_data, "signature", "cedar")
    crop_set = build_crop_set(samples, model.card.to_dict())
    assert len(crop_set) == len(samples) == 70
    val = validate(model.net, crop_set, model.card.to_dict(), torch.device("cpu"))
    # The untrained tiny model scores many pairs within 1e-7 of each other, and a CPU kernel's rounding depends on
    # which images share a batch (validation and eval batch in different orders), enough to flip near-ties. The
    # pairs and metrics are what is compared here, so eval gets the very embeddings validation computed.
    card = model.card.to_dict()
    emb = embed_crop_set(model.net, crop_set.crops, card, torch.device("cpu"))
    by_crop = {np.asarray(c).tobytes(): e for c, e in zip(crop_set.crops, emb, strict=True)}
    monkeypatch.setattr(
        model, "embed_crops", lambda crops, batch_size=64: np.stack([by_crop[np.asarray(c).tobytes()] for c in crops])
    )
    report = evaluate(model, samples, batch_size=64, calibration_fraction=0.0, n_bootstrap=0, progress=False)
    assert val["genuine_pairs"] == report["sizes"]["genuine"] == 10 * 10
    for kind in ("random", "skilled"):
        assert val[f"{kind}_pairs"] == report["sizes"][kind]
        assert val[f"eer_{kind}"] == pytest.approx(report["metrics"][kind]["eer"]["value"], abs=1e-6), kind
        assert 0 < val[f"eer_{kind}"] < 1, kind  # not a degenerate case that any pairs would pass
    assert val["tar@far=0.01_random"] == pytest.approx(report["metrics"]["random"]["tar@far=0.01"]["value"])


# --- end to end ----------------------------------------------------------------------------------------------------


def test_cli_train_writes_loadable_model(cli_run, sig_data):
    import verify
    from verify.io import load_image
    from verify.models.card import read_card

    run, summary = cli_run
    for name in ("model.json", "model.safetensors", "split.json", "metrics.csv", "curves.png", "config.json"):
        assert (run / name).is_file(), name
    assert summary["epochs"] == 1 and summary["val"]["val_eer"] is not None
    assert summary["untrained_val"]["val_eer"] is not None
    card = read_card(run)
    assert card["training"]["config"]["backbone"] == "test_resnet"
    assert card["data"]["fingerprint"] and card["metrics"]["val"]["new"]["val_eer"] == summary["val"]["val_eer"]
    assert json.loads((run / "model.json").read_text()) == card  # the card round-trips
    split = json.loads((run / "split.json").read_text())["splits"]
    assert split["train"] and split["val"] and not set(split["train"]) & set(split["val"])
    model = verify.load_model(run)
    images = [load_image(p, mode="gray") for p in sorted((sig_data / "full_org").glob("*.png"))[:3]]
    emb = model.embed(images)
    assert emb.shape == (3, 16) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert model.fingerprint == card["fingerprint"]


def test_resume_continues_from_saved_epoch(cli_run, capsys):
    from verify.cli import main

    run, _ = cli_run
    assert main(["train", "--out", str(run), "--resume", "--quiet", "--json", "--set", "epochs=2"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == 2
    assert pd.read_csv(run / "metrics.csv")["epoch"].tolist() == [1, 2]
    assert json.loads((run / "state" / "last.json").read_text())["extra"]["epoch"] == 1
    assert main(["train", "--data", str(run), "--out", str(run), *_sets()]) == 2
    assert "--resume" in capsys.readouterr().err


def test_train_pools_several_data_folders_and_resumes_with_them(sig_data, tmp_path, capsys):
    """`verify train --data A B`: both sets' writers train, kept apart by position ("0/1" and "1/1" are two
    writers), and `--resume` without --data reads both folders back from run.json."""
    from verify.cli import main
    from verify.models.card import read_card
    from verify.synth import generate_dataset

    more = generate_dataset(tmp_path / "more", writers=6, genuine=5, forgeries=2, seed=1, height=64, width=96,
                            progress=False)  # fmt: skip
    run = tmp_path / "run"
    assert main(["train", "--data", str(sig_data), str(more), "--out", str(run), "--quiet", *_sets("epochs=1")]) == 0
    split = json.loads((run / "split.json").read_text())["splits"]
    writers = split["train"] + split["val"]
    assert len(writers) == 10 + 6 and {w.split("/")[0] for w in writers} == {"0", "1"}
    assert "0/1" in writers and "1/1" in writers  # the same writer name in both sets: two writers
    assert json.loads((run / "run.json").read_text())["data"] == [str(sig_data), str(more)]
    card = read_card(run)
    assert card["data"]["roots"] == [str(sig_data), str(more)] and "root" not in card["data"]
    assert card["data"]["identities"] == {"train": len(split["train"]), "val": len(split["val"])}
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume", "--quiet", "--json", "--set", "epochs=2"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == 2
    assert read_card(run)["data"]["fingerprint"] == card["data"]["fingerprint"]  # the same two folders again


def test_data_fingerprint_of_pooled_folders_matches_a_naive_listing(sig_data, tmp_path):
    """One folder: paths relative to it (as before pooling existed); several: relative to their own folder and
    prefixed by its position, so a pooled set's fingerprint differs from either folder's alone."""
    import hashlib
    import shutil

    from training.data import data_fingerprint, load_pooled_samples, load_samples

    def naive(roots, samples):
        lines = []
        for s in samples:
            i = next(i for i, r in enumerate(roots) if Path(s.path).is_relative_to(r))
            rel = Path(s.path).relative_to(roots[i]).as_posix()
            rel = rel if len(roots) == 1 else f"{i}/{rel}"
            lines.append(f"{rel}\t{s.identity}\t{s.kind}\t{Path(s.path).stat().st_size}")
        return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()

    single = load_samples(sig_data, "signature")
    assert data_fingerprint(sig_data, single) == data_fingerprint([sig_data], single) == naive([sig_data], single)
    copy = tmp_path / "copy"
    shutil.copytree(sig_data, copy)
    pooled = load_pooled_samples((sig_data, copy), "signature")
    assert len(pooled) == 2 * len(single) and len({s.identity for s in pooled}) == 2 * len({s.identity for s in single})
    assert data_fingerprint((sig_data, copy), pooled) == naive((sig_data, copy), pooled)
    assert data_fingerprint((sig_data, copy), pooled) != data_fingerprint(sig_data, single)


def test_deterministic_with_seed_on_cpu(sig_data, tmp_path):
    from training.trainer import train

    cfg = _tiny_config(seed=3, device="cpu")
    for name in ("a", "b"):
        train(cfg, sig_data, tmp_path / name, progress=False)
    wa, wb = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    la, lb = (pd.read_csv(tmp_path / n / "metrics.csv")["loss"].tolist() for n in ("a", "b"))
    assert la == lb


def test_init_with_replay_reports_old_and_new(cli_run, sig_data, tmp_path):
    from training.trainer import train
    from verify.models.card import read_card
    from verify.synth import generate_dataset

    base, _ = cli_run
    new = generate_dataset(
        tmp_path / "new", writers=8, genuine=5, forgeries=1, seed=7, height=64, width=96, progress=False
    )
    cfg = _tiny_config(replay_fraction=0.25, backbone="resnet18", dim=8)  # the card's architecture wins
    summary = train(cfg, new, tmp_path / "ft", init=base, replay=sig_data, progress=False)
    assert summary["val"]["val_eer"] is not None and summary["old_val"]["val_eer"] is not None
    card, old = read_card(tmp_path / "ft"), read_card(base)
    assert card["architecture"] == old["architecture"] and card["input"] == old["input"]
    assert card["training"]["init"]["fingerprint"] == old["fingerprint"]
    split = json.loads((tmp_path / "ft" / "split.json").read_text())["splits"]
    assert split["replay_train"] and split["replay_val"]


def test_init_may_change_the_input_size_but_not_the_network(cli_run, sig_data, tmp_path, capsys):
    """`verify train --init` honours --set height/width (the saved card and config agree, and the model embeds
    crops of the new size); another backbone, dim or channels is refused, not silently ignored."""
    from verify.cli import main
    from verify.models.card import read_card
    from verify.models.loading import load_model

    base, _ = cli_run
    out = tmp_path / "ft"
    args = ["train", "--init", str(base), "--data", str(sig_data), "--out", str(out), "--quiet"]
    tiny = ["--set", "steps_per_epoch=1", "--set", "epochs=1", "--set", "p=4", "--set", "k=3"]
    assert main([*args, *tiny, "--set", "height=48", "--set", "width=72"]) == 0
    card, old = read_card(out), read_card(base)
    assert (
        (card["input"]["height"], card["input"]["width"]) == (48, 72) != (old["input"]["height"], old["input"]["width"])
    )
    assert json.loads((out / "config.json").read_text())["height"] == 48
    model = load_model(out)
    crop = model.preprocess(np.random.default_rng(0).integers(0, 255, (60, 120), dtype=np.uint8)).image
    assert crop.shape[:2] == (48, 72)
    assert model.embed_crops([crop]).shape == (1, card["architecture"]["dim"])
    capsys.readouterr()
    for bad in ("backbone=resnet18", "dim=8", "channels=3"):
        assert main([*args[:-3], "--out", str(tmp_path / bad), "--quiet", *tiny, "--set", bad]) == 2
        err = capsys.readouterr().err
        assert "the --init network has" in err and "cannot change it" in err and not (tmp_path / bad).exists()


def test_run_folders_are_never_mixed_or_overwritten(cli_run, sig_data, tmp_path, capsys):
    """train and distill refuse an --out holding a model or a run (the teacher itself included); --resume refuses
    other data, another --init and settings its checkpoint is tied to, before rewriting config.json."""
    import shutil

    from verify.cli import main

    base, _ = cli_run
    model = tmp_path / "model"
    shutil.copytree(base, model)
    tiny = ["--quiet", "--set", "steps_per_epoch=1", "--set", "epochs=1", "--set", "p=4", "--set", "k=3"]
    before = (model / "model.safetensors").read_bytes()
    cases = [
        (["train", "--data", str(sig_data), "--out", str(model), *tiny, *_sets()], "already holds a model or a run"),
        (["train", "--init", str(model), "--data", str(sig_data), "--out", str(model), *tiny], "starts from"),
        (["distill", "--teacher", str(model), "--student", "test_resnet", "--data", str(sig_data), "--out", str(model),
          "--quiet"], "starts from"),
        (["distill", "--teacher", str(base), "--student", "test_resnet", "--data", str(sig_data), "--out", str(model),
          "--quiet"], "already holds a model or a run"),
        (["train", "--out", str(model), "--resume", "--data", str(tmp_path)], "on its own data"),
        (["train", "--out", str(model), "--resume", "--init", str(base)], "from its own --init"),
        (["train", "--out", str(model), "--resume", "--set", "dim=64"], "cannot change it"),
        (["train", "--out", str(model), "--resume", "--set", "height=48"], "cannot change it"),
        (["train", "--data", str(sig_data), "--out", str(tmp_path / "dev"), "--device", "tpu", *tiny], "device must"),
    ]  # fmt: skip
    config = (model / "config.json").read_text()
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert (model / "model.safetensors").read_bytes() == before and (model / "config.json").read_text() == config
    for argv in (["eval", "--model", str(model), "--data", str(sig_data), "--out", str(tmp_path / "e"),
                  "--batch-size", "0"],
                 ["synth", "signatures", "--writers", "1", "--genuine", "1", "--forgeries", "1", "--seed", "-1",
                  "--out", str(tmp_path / "s")],
                 ["synth", "signatures", "--writers", "1", "--genuine", "1", "--forgeries", "1", "--height", "100000",
                  "--out", str(tmp_path / "s")],
                 ["ood", "fit", "--model", str(model), "--data", str(sig_data), "--keep", "0"]):  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and "error: argument" in err and "Traceback" not in err, argv
    assert not (tmp_path / "s").exists()


def test_ddp_two_cpu_processes(sig_data, tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", VERIFY_BIN]
    proc = _run([*cmd, "train", "--data", str(sig_data), "--out", str(run), "--quiet", *_sets("epochs=1")], 240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run / "model.safetensors").is_file()
    assert pd.read_csv(run / "metrics.csv")["steps"].tolist() == [2]  # per rank
    assert proc.stdout.count("trained 1 epoch") == 1  # only rank 0 reports


def test_simclr_term_trains_on_two_views(sig_data, tmp_path, monkeypatch):
    """simclr_weight adds NT-Xent over two augmented views of every crop: twice the crops, a different loss."""
    from training import loop
    from training.trainer import train

    seen: list[int] = []
    real = loop.crops_to_tensor
    monkeypatch.setattr(loop, "crops_to_tensor", lambda crops, card: seen.append(len(crops)) or real(crops, card))
    train(_tiny_config(seed=3, device="cpu"), sig_data, tmp_path / "plain", progress=False)
    plain_batches, seen[:] = list(seen), []
    train(_tiny_config(seed=3, device="cpu", simclr_weight=0.5), sig_data, tmp_path / "simclr", progress=False)
    assert seen == [2 * n for n in plain_batches]
    la, lb = (pd.read_csv(tmp_path / n / "metrics.csv")["loss"].iloc[0] for n in ("plain", "simclr"))
    assert lb > la  # NT-Xent of an untrained net is large: the term is really in the loss
    with pytest.raises(ConfigError, match="augment"):
        _tiny_config(simclr_weight=0.5, augment=False)


def test_ood_fit_on_a_sample_of_identities(tmp_path: Path, tiny_model: Path) -> None:
    """`verify ood fit --max-identities N` fits on N of the dataset's writers (seeded), all of them without it."""
    import shutil

    from verify.cli import main
    from verify.synth import generate_dataset

    data = generate_dataset(tmp_path / "data", 8, 4, 2, seed=1, height=64, width=96, progress=False)
    counts = {}
    for n in (0, 6):
        model = shutil.copytree(tiny_model, tmp_path / f"model-{n}")
        args = ["ood", "fit", "--model", str(model), "--data", str(data), "--gate", "gaussian", "--held-out", "0.5"]
        if n:  # one run as a user runs it, the other in this process (each process pays the imports, ~8 s)
            proc = _run([VERIFY_BIN, *args, "--max-identities", str(n), "--json"])
            assert proc.returncode == 0, proc.stderr
        else:
            assert main([*args, "--json"]) == 0
        counts[n] = json.loads((model / "model.json").read_text())["ood"]["n_classes"]
    assert counts == {0: 4, 6: 3}


def test_ood_fit_skips_an_unreadable_image_as_training_does(tmp_path: Path, tiny_model: Path, caplog) -> None:
    """One corrupt scan in the folder is skipped with a warning (it stopped the whole fit). Both gate kinds read
    images through `training.ood_fit.readable`; the Gaussian one is fitted here (the exposure gate's outlier
    material would add half a minute)."""
    import shutil

    from verify.cli import main
    from verify.synth import generate_dataset

    data = generate_dataset(tmp_path / "data", 8, 4, 2, seed=1, height=64, width=96, progress=False)
    bad = sorted((data / "full_org").glob("*.png"))
    bad[0].write_bytes(b"not an image")
    bad[-1].write_bytes(b"")
    for gate in ("gaussian",):
        model = shutil.copytree(tiny_model, tmp_path / f"model-{gate}")
        args = ["ood", "fit", "--model", str(model), "--data", str(data), "--gate", gate, "--held-out", "0.5"]
        assert main(args) == 0
        assert "ood" in json.loads((model / "model.json").read_text())
    assert "images skipped" in caplog.text


def test_ood_fit_pools_several_datasets_and_keeps_their_writers_apart(tmp_path: Path, tiny_model: Path) -> None:
    """`verify ood fit --data A B`: both sets' writers are fitted on, and the same writer name in two sets is two
    writers (two copies of one 8-writer set give 16, half of them held out)."""
    import shutil

    from verify.synth import generate_dataset

    data = generate_dataset(tmp_path / "data", 8, 4, 2, seed=1, height=64, width=96, progress=False)
    again = shutil.copytree(data, tmp_path / "again")
    model = shutil.copytree(tiny_model, tmp_path / "model")
    args = ["ood", "fit", "--model", str(model), "--data", str(data), str(again), "--gate", "gaussian"]
    proc = _run([VERIFY_BIN, *args, "--held-out", "0.5", "--json"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads((model / "model.json").read_text())["ood"]["n_classes"] == 8


def test_synth_writers_join_each_epochs_training_identities(sig_data, tmp_path, monkeypatch):
    """`synth_writers=N`: N new generator-v2 writers per epoch (K genuine + K forgeries each) are trained on
    beside the data's writers; an epoch's writers are the same on every run and differ between epochs."""
    from training import trainer
    from training.synth_stream import stream_crop_set, with_stream_writers
    from verify.models.card import new_card

    config = _tiny_config(synth_writers=2, seed=5, device="cpu", epochs=2)
    card = new_card("t", "signature", {}, {"height": 32, "width": 48, "channels": 1}, {"kind": "signature"})
    first, again, second = (stream_crop_set(config, card, e) for e in (0, 0, 1))
    assert [s.identity for s in first.samples] == [s.identity for s in again.samples]
    assert all(np.array_equal(a, b) for a, b in zip(first.crops, again.crops, strict=True))
    assert len(first) == 2 * 6 and first.crops[0].shape == (32, 48)
    names = lambda crops: {s.identity.split("#")[0] for s in crops.samples}  # noqa: E731
    assert len(names(first)) == 2 and not names(first) & names(second)

    seen: list[tuple[int, int, set[int]]] = []
    real = trainer.train_one_epoch

    def spy(ctx, epoch):
        seen.append((epoch, len(ctx.crops), {i for b in ctx.batches(epoch) for i in b}))
        return real(ctx, epoch)

    monkeypatch.setattr(trainer, "train_one_epoch", spy)
    trainer.train(config, sig_data, tmp_path / "run", progress=False)
    base = seen[0][1] - len(first)  # the data's own training crops
    assert [n for _, n, _ in seen] == [base + 12, base + 12]
    assert all(max(idx) >= base for _, _, idx in seen)  # stream crops are in the batches
    card = json.loads((tmp_path / "run" / "model.json").read_text())
    assert card["data"]["synth_stream"]["writers_per_epoch"] == 2

    from training.runs import RunData

    data = RunData(first, np.zeros(len(first), bool), {}, first, None, {}, Path("."), None, "")
    data = dataclasses.replace(data, train=dataclasses.replace(first, labels=np.zeros(len(first), np.int64)))
    joined = with_stream_writers(data, second)
    added = joined.train.labels[len(first) :]
    assert added.min() == 1 and len(set(added)) == 4 and len(joined.forgery_of) == 2
    for writer, rows in joined.forgery_of.items():
        assert all(joined.train.samples[r].identity.endswith("#skilled") for r in rows)
        genuine = joined.train.samples[int(np.flatnonzero(joined.train.labels == writer)[0])]
        assert joined.train.samples[rows[0]].identity == genuine.identity + "#skilled"

    with pytest.raises(ConfigError, match="steps_per_epoch"):
        _tiny_config(synth_writers=2, steps_per_epoch=0)


def test_ood_fit_with_too_little_outlier_material_is_one_line_and_changes_nothing(
    tmp_path: Path, tiny_model: Path
) -> None:
    """`--material` below what a kind needs to be fitted on (every kind left out) is refused before any work, as a
    one-line error, and the model directory is left as it was."""
    import shutil

    from verify.synth import generate_dataset

    data = generate_dataset(tmp_path / "data", 4, 2, 1, seed=1, height=64, width=96, progress=False)
    model = shutil.copytree(tiny_model, tmp_path / "model")
    before = (model / "model.json").read_bytes()
    proc = _run([VERIFY_BIN, "ood", "fit", "--model", str(model), "--data", str(data), "--gate", "exposure",
                 "--material", "3"])  # fmt: skip
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "at least 6 outlier images per kind, got 3" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert (model / "model.json").read_bytes() == before
