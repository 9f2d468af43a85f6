"""The PyTorch port of dlib's face ResNet: format reader, architecture, agreement with dlib, ONNX export."""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from training.convert_dlib import default_dat_path, dlib_state_dict, load_dlib_resnet, main
from training.dlib_format import DlibStreamReader, parse_dlib_net
from verify.errors import ModelError
from verify.models.card import load_network
from verify.models.dlib_resnet import DlibFaceResNet, add_zero_padded, create_dlib_resnet
from verify.models.runtime import crops_to_tensor

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / "assets" / "models" / "face-resnet"
FACES = Path(__file__).resolve().parent / "data" / "faces"
DEMO = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"]


def _pack_int(value: int) -> bytes:
    """dlib's ser_helper::pack_int, written from its definition (naive reference for the reader)."""
    neg, mag = (0x80, -value) if value < 0 else (0, value)
    body = mag.to_bytes(max(1, (mag.bit_length() + 7) // 8), "little")
    return bytes([len(body) | neg]) + body


def _dat_path() -> Path:
    pytest.importorskip("face_recognition_models")
    return default_dat_path()


@pytest.fixture(scope="module")
def port() -> torch.nn.Module:
    net, _card = load_network(MODEL_DIR)
    return net


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((MODEL_DIR / "model.json").read_text())


@pytest.fixture(scope="module")
def demo_chips() -> list[np.ndarray]:
    """dlib HOG + 5-point + get_face_chip(150, 0.25) chips of the demo photos, made with dlib directly."""
    dlib = pytest.importorskip("dlib")
    import cv2

    models = default_dat_path().parent
    detector = dlib.get_frontal_face_detector()
    shapes = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    chips = []
    for name in DEMO:
        img = cv2.cvtColor(cv2.imread(str(FACES / name)), cv2.COLOR_BGR2RGB)
        (box,) = detector(img, 1)
        chips.append(dlib.get_face_chip(img, shapes(img, box), size=150, padding=0.25))
    return chips


def test_reader_decodes_dlib_primitives_like_the_reference_encoder(rng: np.random.Generator) -> None:
    ints = [0, 1, -1, 127, 128, 255, 256, -300, 2**31 - 1, -(2**40), 2**63 - 1, *rng.integers(-1e9, 1e9, 20)]
    floats = [(10737418, -28), (0, 11), (-16093282, -17)]  # 0.04, 0, -122.782 as dlib writes them
    data = b"".join(_pack_int(int(v)) for v in ints)
    data += b"".join(_pack_int(m) + _pack_int(e) for m, e in floats)
    values = np.arange(6, dtype="<f4").reshape(1, 2, 3, 1)
    data += _pack_int(5) + b"relu_" + b"10" + b"".join(_pack_int(v) for v in (2, 1, 2, 3, 1)) + values.tobytes()
    r = DlibStreamReader(data)
    assert [r.read_int() for _ in ints] == [int(v) for v in ints]
    got = [r.read_float() for _ in floats]
    assert got == [m * 2.0**e for m, e in floats] and got == pytest.approx([0.04, 0.0, -122.782], rel=1e-7)
    assert r.read_string() == "relu_"
    assert (r.read_bool(), r.read_bool()) == (True, False)
    np.testing.assert_array_equal(r.read_tensor(), values)
    with pytest.raises(ModelError, match="truncated"):
        r.read_int()


@pytest.mark.parametrize(("sa", "sb"), [((2, 3, 4, 4), (2, 5, 3, 3)), ((1, 4, 2, 2), (1, 4, 2, 2))])
def test_add_zero_padded_matches_naive_loop(sa: tuple, sb: tuple) -> None:
    a, b = torch.randn(sa), torch.randn(sb)
    want = torch.zeros([max(x, y) for x, y in zip(sa, sb, strict=True)])
    for idx in itertools.product(*(range(n) for n in want.shape)):
        for t in (a, b):
            if all(i < n for i, n in zip(idx, t.shape, strict=True)):
                want[idx] += t[idx]
    torch.testing.assert_close(add_zero_padded(a, b), want)


def test_architecture_sizes_batching_and_unit_norm(port: torch.nn.Module) -> None:
    sizes = []
    hooks = [b.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:]))) for b in port.blocks]
    x = torch.randn(4, 3, 150, 150)
    with torch.inference_mode():
        batched = port(x)
        single = torch.cat([port(x[i : i + 1]) for i in range(4)])
    for h in hooks:
        h.remove()
    # 4x4 and 2x2 outputs where the strided conv gives 3x3 / 1x1: dlib's add_prev keeps the larger size
    assert sizes[:8:4] == [(32, 35, 35), (64, 17, 17)] and sizes[-4] == (256, 4, 4) and sizes[-1] == (256, 2, 2)
    assert batched.shape == (4, 128)
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=0)
    torch.testing.assert_close(batched.norm(dim=1), torch.ones(4))
    assert isinstance(create_dlib_resnet({"kind": "dlib_resnet", "dim": 128}), DlibFaceResNet)


def test_parser_reads_the_whole_dlib_file_and_checks_it() -> None:
    data = _dat_path().read_bytes()
    net = parse_dlib_net(data)
    assert net.loss["margin"] == pytest.approx(0.04) and net.loss["distance_threshold"] == pytest.approx(0.6)
    assert net.input["means"] == pytest.approx([122.782, 117.001, 104.298], abs=1e-4)
    assert sum(layer["type"] == "con" for layer in net.layers) == 29
    with pytest.raises(ModelError, match="truncated"):
        parse_dlib_net(data[: len(data) // 2])
    i = data.index(b"con_4") + 5 + 11 + 4 * 4736 + 6  # first conv: params tensor, then filters 32, nr, nc 7
    assert data[i : i + 2] == b"\x01\x02"  # its stride_y
    with pytest.raises(ModelError, match="layer 0 is"):
        dlib_state_dict(parse_dlib_net(data[:i] + b"\x01\x01" + data[i + 2 :]))


def test_committed_weights_are_what_the_converter_makes(tmp_path: Path) -> None:
    pytest.importorskip("dlib")
    _dat_path()
    faces = tmp_path / "faces"
    faces.mkdir()
    (faces / "obama.jpg").write_bytes((FACES / "obama.jpg").read_bytes())
    assert main(["--out", str(tmp_path / "m"), "--faces", str(faces)]) == 0
    made, shipped = load_file(tmp_path / "m" / "model.safetensors"), load_file(MODEL_DIR / "model.safetensors")
    assert made.keys() == shipped.keys()
    assert all(torch.equal(made[k], shipped[k]) and made[k].dtype == torch.float16 for k in made)
    assert (tmp_path / "m" / "PROVENANCE.md").read_text().count("CC0") == 1


def test_card_reproduces_dlib_input_scaling(card: dict) -> None:
    assert card["architecture"] == {"kind": "dlib_resnet", "dim": 128}
    assert card["licence"] == "CC0-1.0" and card["preprocessing"]["padding"] == 0.25
    crop = np.random.default_rng(1).integers(0, 256, (150, 150, 3), dtype=np.uint8)
    want = (crop.astype(np.float64) - [122.782, 117.001, 104.298]) / 256.0
    got = crops_to_tensor([crop], card)[0].permute(1, 2, 0).double().numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_embeddings_agree_with_dlib_on_demo_faces(port, card, demo_chips) -> None:
    import dlib

    rec = dlib.face_recognition_model_v1(str(default_dat_path()))
    ref = np.array([np.asarray(rec.compute_face_descriptor(c)) for c in demo_chips])
    with torch.inference_mode():
        raw = port.forward_raw(crops_to_tensor(demo_chips, card)).double().numpy()
    cos = (raw * ref).sum(1) / np.linalg.norm(raw, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.999, cos
    emb = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    for i, j in itertools.combinations(range(len(DEMO)), 2):
        dlib_same = np.linalg.norm(ref[i] - ref[j]) < 0.6
        port_same = emb[i] @ emb[j] >= card["calibration"]["threshold"]
        assert dlib_same == port_same == (DEMO[i].startswith("obama") and DEMO[j].startswith("obama"))


def test_load_model_end_to_end_decides_like_dlib(card) -> None:
    pytest.importorskip("dlib")
    import verify
    from verify.io import load_image

    model = verify.load_model(MODEL_DIR)
    emb = model.embed([load_image(FACES / name) for name in DEMO])
    assert emb.shape == (4, 128) and model.threshold == card["calibration"]["threshold"]
    same = emb @ emb.T >= model.threshold
    np.testing.assert_array_equal(same, [[n.startswith("obama") == m.startswith("obama") for m in DEMO] for n in DEMO])


def test_fresh_conversion_matches_dlib_exactly(demo_chips, card) -> None:
    import dlib

    net = load_dlib_resnet(_dat_path())
    rec = dlib.face_recognition_model_v1(str(default_dat_path()))
    ref = np.array([np.asarray(rec.compute_face_descriptor(c)) for c in demo_chips[:2]])
    with torch.inference_mode():
        raw = net.forward_raw(crops_to_tensor(demo_chips[:2], card)).numpy()
    np.testing.assert_allclose(raw, ref, atol=1e-5)


def test_onnx_export_matches_pytorch(port, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "face.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(port, (torch.randn(2, 3, 150, 150),), str(path), opset_version=17, dynamo=False,
                          input_names=["x"], output_names=["emb"],
                          dynamic_axes={"x": {0: "batch"}, "emb": {0: "batch"}})  # fmt: skip
    x = torch.randn(3, 3, 150, 150)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    with torch.inference_mode():
        want = port(x).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
