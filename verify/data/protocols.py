"""Names of the dataset layouts and pair formats that the CLI, training and evaluation accept."""

from __future__ import annotations

from verify.data.signatures import SIGNATURE_PROTOCOLS

# Layouts of a dataset folder (`--data DIR`): identity folders or one of the signature datasets.
FOLDER_LAYOUTS: tuple[str, ...] = ("folders", *SIGNATURE_PROTOCOLS)
# Formats of a pairs file (`--pairs FILE`): LFW's pairs.txt or a pairs CSV.
PAIR_FORMATS: tuple[str, ...] = ("lfw", "csv")
# Everything `verify eval --protocol` accepts.
EVAL_PROTOCOLS: tuple[str, ...] = (*SIGNATURE_PROTOCOLS, "folders", *PAIR_FORMATS)


def is_signature_protocol(protocol: str | None) -> bool:
    """True for the layouts of signature datasets (cedar, gpds, mcyt, bhsig, manifest)."""
    return protocol is not None and protocol.lower() in SIGNATURE_PROTOCOLS
