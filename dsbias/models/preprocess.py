"""A frozen model's own eval preprocessing (input size, resize and crop, interpolation, mean/std), as its library
builds it, split at the one place where dsbias's bias-anatomy ``tensor`` stage goes: between the ``[0, 1]``
tensor and the normalisation.

Without a ``data.transform`` the library's pipeline runs unchanged (:attr:`ModelPreprocess.full`), so features
equal what the library's own preprocessing gives. With one, the ``pil`` stage runs first on the decoded image
and the ``tensor`` stage on the resized, cropped ``[3, H, W]`` tensor in [0, 1], before the model's
normalisation: the same places as in dsbias's own eval view (:func:`dsbias.data.views.create_eval_transform`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torchvision import transforms as T


@dataclass
class ModelPreprocess:
    """PIL RGB image -> ``[3, H, W]`` float tensor, the model's way.

    Attributes:
        full: The library's own pipeline, unchanged.
        to_unit: Its steps up to the ``[0, 1]`` tensor (resize, crop, to tensor).
        normalize: Its remaining steps (``(x - mean) / std``).
        record: What ``meta.json`` records: the library, input size, resize/crop, interpolation, mean, std and
            the steps as the library prints them.
    """

    full: Callable[[Any], torch.Tensor]
    to_unit: Callable[[Any], torch.Tensor]
    normalize: Callable[[torch.Tensor], torch.Tensor]
    record: dict[str, Any]

    def compose(self, pil_fn: Callable | None = None, tensor_fn: Callable | None = None) -> Callable[[Any], Any]:
        """The pipeline with a bias-anatomy transformation's stages in place (see the module docstring)."""
        if tensor_fn is None:
            return T.Compose([pil_fn, self.full]) if pil_fn is not None else self.full
        return T.Compose([*([pil_fn] if pil_fn is not None else []), self.to_unit, tensor_fn, self.normalize])


def from_torchvision(pipeline: T.Compose, record: dict[str, Any]) -> ModelPreprocess:
    """Split a torchvision ``Compose`` (timm's and open_clip's eval transforms) at its last ``Normalize``.

    Raises:
        ValueError: No ``Normalize``, or no ``ToTensor`` before it.
    """
    steps = list(pipeline.transforms)
    at = max((i for i, t in enumerate(steps) if isinstance(t, T.Normalize)), default=None)
    if at is None or not any(isinstance(t, T.ToTensor) for t in steps[:at]):
        raise ValueError(f"preprocessing {pipeline!r}: expected ToTensor then Normalize")
    return ModelPreprocess(full=pipeline, to_unit=T.Compose(steps[:at]), normalize=T.Compose(steps[at:]),
                           record={**record, "steps": [repr(t) for t in steps]})


class ProcessorImages:
    """A Hugging Face image processor applied to one image: PIL -> ``pixel_values[0]`` ``[3, H, W]``.

    Args:
        processor: An ``AutoImageProcessor`` instance.
        normalize: False leaves out the processor's own normalisation (the ``[0, 1]`` tensor).
    """

    def __init__(self, processor: Any, normalize: bool = True) -> None:
        self.processor = processor
        self.kwargs = {} if normalize else {"do_normalize": False}

    def __call__(self, img: Any) -> torch.Tensor:
        return self.processor(images=img, return_tensors="pt", **self.kwargs)["pixel_values"][0]

    def __repr__(self) -> str:
        return f"{type(self.processor).__name__}({self.kwargs or ''})"


def from_processor(processor: Any, record: dict[str, Any]) -> ModelPreprocess:
    """A Hugging Face image processor as a :class:`ModelPreprocess` (normalised with its ``image_mean/std``)."""
    mean, std = list(processor.image_mean), list(processor.image_std)
    # A processor that does not normalise (do_normalize=False in its config) gives the [0, 1] tensor already.
    normalize = T.Normalize(mean, std) if getattr(processor, "do_normalize", True) else T.Compose([])
    return ModelPreprocess(full=ProcessorImages(processor), to_unit=ProcessorImages(processor, normalize=False),
                           normalize=normalize,
                           record={**record, "mean": mean, "std": std, "steps": [repr(ProcessorImages(processor))]})
