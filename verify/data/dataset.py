"""A thin torch Dataset over a list of `Sample`s: decode -> preprocess -> optional transform."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from verify.data.sample import Sample
from verify.io import load_image
from verify.preprocess.crop import Crop


class ImageDataset(Dataset):
    """Items are ``(x, label_index)``.

    x is `to_tensor(preprocess(image))` — or the uint8 array when `to_tensor` is None — where image is decoded by
    `verify.io.load_image` and `preprocess` maps it to a `Crop` or an array (None: the decoded image itself).

    Args:
        samples: the items.
        preprocess: image uint8 [H, W, 3] (or [H, W] when mode="gray") -> Crop or array.
        to_tensor: array -> tensor (e.g. normalisation + augmentation), applied last.
        mode: "rgb" or "gray" decoding.
        classes: identity names in label order; default: the samples' sorted identities. Pass the training
            classes to keep labels aligned across datasets (an unknown identity then raises KeyError).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        preprocess: Callable[[np.ndarray], Crop | np.ndarray] | None = None,
        to_tensor: Callable[[np.ndarray], Any] | None = None,
        *,
        mode: str = "rgb",
        classes: Sequence[str] | None = None,
    ) -> None:
        self.samples = list(samples)
        self.preprocess = preprocess
        self.to_tensor = to_tensor
        self.mode = mode
        self.classes = list(classes) if classes is not None else sorted({s.identity for s in self.samples})
        self.class_to_index = {c: i for i, c in enumerate(self.classes)}
        self.labels = [self.class_to_index[s.identity] for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> np.ndarray:
        """The preprocessed uint8 array of one item (no `to_tensor`)."""
        image = load_image(self.samples[index].path, mode=self.mode)
        if self.preprocess is None:
            return image
        out = self.preprocess(image)
        return out.image if isinstance(out, Crop) else np.asarray(out)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        x = self.load(index)
        return (self.to_tensor(x) if self.to_tensor is not None else x), self.labels[index]
