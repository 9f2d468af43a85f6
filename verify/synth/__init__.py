"""Procedural signature generator: sigma-lognormal writers, skilled forgers, scan-like rendering.

No real signature dataset can be had offline, so the project synthesises one in the manner of Ferrer et al.'s
GPDS-Synthetic database: `generate_dataset` writes the CEDAR layout, `render_writer_samples` renders in memory,
`contact_sheet` makes a preview grid.
"""

from __future__ import annotations

from verify.synth.dataset import generate_dataset, render_writer_samples
from verify.synth.preview import contact_sheet, write_preview

__all__ = ["contact_sheet", "generate_dataset", "render_writer_samples", "write_preview"]
