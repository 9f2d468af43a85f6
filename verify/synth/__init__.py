"""Procedural signature generator: sigma-lognormal writers, skilled forgers, scan-like rendering.

No real signature dataset can be had offline, so the project synthesises one in the manner of Ferrer et al.'s
GPDS-Synthetic database: `generate_dataset` writes the CEDAR layout, `render_writer_samples` renders in memory,
`contact_sheet` makes a preview grid.

Generator v2 (`NameSignatureGenerator`) writes people's names letter by letter from Hershey single-stroke fonts,
re-timed by the sigma-lognormal model, with skilled and simple forgeries and scan domain randomisation;
`SyntheticSignatureStream` (in `verify.synth.stream`, needs torch) serves it on the fly for training.
"""

from __future__ import annotations

from verify.synth.dataset import generate_dataset, render_writer_samples
from verify.synth.generator import KINDS, Kind, NameSignatureGenerator, SynthWriter
from verify.synth.preview import contact_sheet, write_preview
from verify.synth.scan import ScanConfig

__all__ = [
    "KINDS",
    "Kind",
    "NameSignatureGenerator",
    "ScanConfig",
    "SynthWriter",
    "contact_sheet",
    "generate_dataset",
    "render_writer_samples",
    "write_preview",
]
