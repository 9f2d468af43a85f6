"""The library's CLI runs without the parts on top of it: app/ and training/ commands are found lazily."""

from __future__ import annotations

import subprocess
import sys

_WITHOUT = """
import importlib.abc, sys

class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {HIDDEN}:
            raise ModuleNotFoundError(name)
        return None

sys.meta_path.insert(0, Hide())
import importlib.util
importlib.util.find_spec = (lambda real: lambda name, *a: None if name.split(".")[0] in {HIDDEN} else real(name, *a))(
    importlib.util.find_spec
)
from verify.cli import build_parser
sub = next(a for a in build_parser()._actions if a.dest == "command")
print(" ".join(sorted(sub.choices)))
print(sorted(m for m in sys.modules if m.split(".")[0] in ("app", "training", "gradio")))
"""


def _commands(hidden: set[str]) -> tuple[list[str], str]:
    code = _WITHOUT.replace("{HIDDEN}", repr(hidden))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    names, loaded = out.stdout.strip().splitlines()
    return names.split(), loaded


def test_without_app_and_training_the_inference_commands_remain() -> None:
    from verify.cli import COMMANDS

    names, loaded = _commands({"app", "training"})
    assert names == sorted(COMMANDS) and {"match", "eval", "batch"} <= set(names)
    assert loaded == "[]"  # nothing of app/, training/ or gradio was imported


def test_with_everything_installed_all_commands_are_there() -> None:
    names, _ = _commands(set())
    assert {"app", "train", "distill", "ood"} <= set(names)
    assert "match" in names


def test_a_missing_optional_dependency_names_its_extra(monkeypatch, capsys) -> None:
    import verify.cli.export as export_command
    from verify.cli import main

    def run(args):
        raise ModuleNotFoundError("No module named 'onnxruntime'", name="onnxruntime")

    monkeypatch.setattr(export_command, "run", run)
    assert main(["export", "--model", "m", "--out", "m.onnx"]) == 2
    assert "pip install 'siamese-verify[export]'" in capsys.readouterr().err
