"""Named, composable bias-anatomy transformations (Zeng, Yin & Liu 2024, and resolution/codec controls).

``data.transform`` names one or more transformations joined by ``+`` (``grayscale+lpf``); they are applied to
train AND val images, so accuracy under a transformation measures what the kept information alone is worth.
Each declares *where* it applies, following Zeng et al.'s Table 2:

- ``pil`` stage: on the decoded native PIL image, before any augmentation (crop, flip, RandAugment);
- ``tensor`` stage: on the network-size ``[3, H, W]`` tensor in [0, 1], after augmentation and ``ToTensor``,
  before ``Normalize`` (so normalisation is the same in train and eval, unlike the original ``seg`` case).

and whether RandAugment stays on (``keep_randaug``; a composition keeps it only if every part does).
Within a stage, parts run in the order written.

==========================  ======  =========  =======================================================
name                        stage   RandAug    keeps
==========================  ======  =========  =======================================================
``grayscale``               pil     yes        luma only (three equal channels)
``mean_rgb``                pil     yes        the image's mean colour (a constant image)
``jpeg``                    pil     yes        everything, after a JPEG round trip at ``jpeg_quality``
``downup``                  pil     yes        detail coarser than ``downup_size`` (shorter side)
``canonical``               pil     yes        content at one size and codec (the re-encode control)
``canny``                   pil     no         binary edges (``canny_low`` / ``canny_high``)
``hog``                     pil     no         HOG visualisation (``hog_cell``, ``hog_orientations``)
``lpf`` / ``hpf``           tensor  no         grayscale below / above ``freq_threshold`` (``filter``)
``pixel_shuffle_fixed``     tensor  yes        pixel values, one permutation for all images
``pixel_shuffle_random``    tensor  yes        pixel values, a permutation per image
``patch_shuffle_fixed``     tensor  yes        ``patch_size`` tiles, one permutation for all images
``patch_shuffle_random``    tensor  yes        ``patch_size`` tiles, a permutation per image
==========================  ======  =========  =======================================================

The original code's names (``fixed_pixel_shuffle``, ``random_patch_shuffle``...) are accepted as aliases.
Model-based transformations (``seg``, ``det``, ``sam``, ``depth``, ``vae``, ``caption``, ``uncon_gen``,
``text_to_image``) and ``sift`` (OpenCV) are recognised but not built in: they stop with a message saying what
they need (nothing downloads weights).

Wiring (every view that feeds a network, train and eval, must use the same ``AnatomyTransforms``)::

    a = create_anatomy_transforms(cfg.data)
    # eval / feature extraction (dsbias.features.extract):
    create_eval_transform(size, crop_pct, mean, std, pil_fn=a.pil, tensor_fn=a.tensor)
    # supervised training view (timm create_transform(..., separate=True) -> primary, secondary, final):
    a.compose([primary, secondary, corruption], final, randaug=secondary)
    # a view built from an existing eval Compose [Resize, CenterCrop, Compose(ToTensor, Normalize)]:
    a.compose([resize, center_crop, corruption], to_tensor_normalize)

``compose`` puts ``a.pil`` first, drops ``randaug`` when ``keep_randaug`` is false, and inserts ``a.tensor``
right after the ``ToTensor`` inside ``final``. Mixup/CutMix act on batches and are not affected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from torchvision import transforms as T

from dsbias.anatomy.codec import Canonicalize, DownUp, JpegRoundTrip
from dsbias.anatomy.color import grayscale, mean_rgb
from dsbias.anatomy.config import AnatomyConfig
from dsbias.anatomy.edges import CannyEdges
from dsbias.anatomy.frequency import FrequencyFilter
from dsbias.anatomy.hog import HOGImage
from dsbias.anatomy.shuffle import Shuffle


class TransformSettings(Protocol):
    """What the transformations read of the data config (:class:`dsbias.data.config.DataConfig` has it)."""

    transform: str
    anatomy: AnatomyConfig
    image_size: int


@dataclass(frozen=True)
class TransformSpec:
    """One named transformation: where it applies, whether RandAugment stays on, and how to build it."""

    name: str
    stage: str  # "pil" (before augmentation) or "tensor" (after augmentation, before Normalize)
    keep_randaug: bool
    build: Callable[[AnatomyConfig], Callable[[Any], Any]]


def _freq(highpass: bool) -> Callable[[AnatomyConfig], FrequencyFilter]:
    return lambda a: FrequencyFilter(a.freq_threshold, a.freq_ref_size, a.filter, a.filter_order, highpass)


def _shuffle(pixel: bool, fixed: bool) -> Callable[[AnatomyConfig], Shuffle]:
    return lambda a: Shuffle(1 if pixel else a.patch_size, fixed, a.shuffle_seed)


TRANSFORMS: dict[str, TransformSpec] = {s.name: s for s in [
    TransformSpec("grayscale", "pil", True, lambda a: grayscale),
    TransformSpec("mean_rgb", "pil", True, lambda a: mean_rgb),
    TransformSpec("jpeg", "pil", True, lambda a: JpegRoundTrip(a.jpeg_quality)),
    TransformSpec("downup", "pil", True, lambda a: DownUp(a.downup_size)),
    TransformSpec("canonical", "pil", True,
                  lambda a: Canonicalize(a.canonical_size, a.canonical_format, a.canonical_quality)),
    TransformSpec("canny", "pil", False, lambda a: CannyEdges(a.canny_low, a.canny_high)),
    TransformSpec("hog", "pil", False, lambda a: HOGImage(a.hog_cell, a.hog_orientations)),
    TransformSpec("lpf", "tensor", False, _freq(highpass=False)),
    TransformSpec("hpf", "tensor", False, _freq(highpass=True)),
    TransformSpec("pixel_shuffle_fixed", "tensor", True, _shuffle(pixel=True, fixed=True)),
    TransformSpec("pixel_shuffle_random", "tensor", True, _shuffle(pixel=True, fixed=False)),
    TransformSpec("patch_shuffle_fixed", "tensor", True, _shuffle(pixel=False, fixed=True)),
    TransformSpec("patch_shuffle_random", "tensor", True, _shuffle(pixel=False, fixed=False)),
]}
ALIASES = {f"{order}_{kind}_shuffle": f"{kind}_shuffle_{order}"
           for order in ("fixed", "random") for kind in ("pixel", "patch")}
# Recognised, not built in: what each needs.
NEEDS_MODEL = {
    "seg": "a semantic-segmentation model (Zeng et al.: Mask2Former/BEiT-v2 on ADE20K)",
    "det": "an object detector (Zeng et al.: ViTDet-H on LVIS)",
    "sam": "a Segment Anything checkpoint (Zeng et al.: SAM ViT-L)",
    "depth": "a depth model (Zeng et al.: Depth-Anything-V2 ViT-L)",
    "vae": "an image autoencoder (Zeng et al.: Stable Diffusion KL-f4)",
    "caption": "a captioning model and a text classifier (Zeng et al.: LLaVA-1.5 + Sentence-T5)",
    "uncon_gen": "a generative model trained per source (Zeng et al.: DiT-B/2)",
    "text_to_image": "a text-to-image model and captions (Zeng et al.: SDXL-Turbo)",
    "sift": "OpenCV's SIFT (OpenCV is not a dsbias dependency)",
}


def parse_transform(spec: str) -> list[TransformSpec]:
    """The parts of a ``data.transform`` string, in order (``""`` -> ``[]``).

    Raises:
        ValueError: An unknown or repeated name, or a model-based one (the message says what it needs).
    """
    names = [n.strip() for n in spec.split("+")] if spec.strip() else []
    out: list[TransformSpec] = []
    for raw in names:
        name = ALIASES.get(raw, raw)
        if name in NEEDS_MODEL:
            raise ValueError(f"data.transform={spec}: '{name}' needs {NEEDS_MODEL[name]}, which dsbias does not "
                             "build in or download; transform the images offline (data.anatomy.model_path is "
                             "reserved for it) and point a folder source at the result")
        if name not in TRANSFORMS:
            known = ", ".join([*TRANSFORMS, *ALIASES])
            raise ValueError(f"data.transform={spec}: unknown transformation '{raw}'; known: {known}")
        if any(p.name == name for p in out):
            raise ValueError(f"data.transform={spec}: '{name}' appears twice")
        out.append(TRANSFORMS[name])
    return out


def insert_after_to_tensor(transform: Callable[[Any], Any], fn: Callable[[Any], Any]) -> T.Compose:
    """A copy of ``transform`` (a ``Compose`` containing a ``ToTensor``, possibly nested) with ``fn`` right
    after the ``ToTensor``, i.e. on the [0, 1] tensor before ``Normalize`` (timm's ``MaybeToTensor`` counts).

    Raises:
        ValueError: No ``ToTensor`` inside.
    """
    if not isinstance(transform, T.Compose):
        raise ValueError(f"insert_after_to_tensor: expected a Compose with a ToTensor, got {transform!r}")
    steps = list(transform.transforms)
    for i, t in enumerate(steps):
        if isinstance(t, T.ToTensor):
            return T.Compose([*steps[:i + 1], fn, *steps[i + 1:]])
        if isinstance(t, T.Compose):
            try:
                return T.Compose([*steps[:i], insert_after_to_tensor(t, fn), *steps[i + 1:]])
            except ValueError:
                continue
    raise ValueError(f"insert_after_to_tensor: no ToTensor in {transform!r}")


@dataclass
class AnatomyTransforms:
    """The transformation of a run, split by where it applies.

    Attributes:
        pil: PIL RGB -> PIL RGB, applied first, on the decoded native image (None: nothing).
        tensor: ``[3, H, W]`` in [0, 1] -> same, applied right after ``ToTensor`` (None: nothing).
        keep_randaug: Whether the training view keeps RandAugment (Zeng et al. Table 2).
        names: The parts, in order (``[]`` = the reference, no transformation).
    """

    pil: Callable[[Any], Any] | None
    tensor: Callable[[Any], Any] | None
    keep_randaug: bool
    names: list[str]

    def __iter__(self):
        """Unpack as ``pil_fn, tensor_fn, keep_randaug``."""
        return iter((self.pil, self.tensor, self.keep_randaug))

    def compose(
        self, augment: Sequence[Callable[[Any], Any]], final: Callable[[Any], Any], randaug: Callable | None = None
    ) -> T.Compose:
        """Wrap a view: ``[pil] + augment (minus randaug unless kept) + final (with tensor after ToTensor)``.

        Args:
            augment: PIL steps of the view, in order (crop/flip, RandAugment, a corruption...).
            final: The ``ToTensor`` + ``Normalize`` part (a ``Compose`` containing a ``ToTensor``).
            randaug: The element of ``augment`` that is RandAugment; dropped when ``keep_randaug`` is false.
        """
        steps: list[Callable[[Any], Any]] = [self.pil] if self.pil is not None else []
        steps += [t for t in augment if self.keep_randaug or randaug is None or t is not randaug]
        steps.append(insert_after_to_tensor(final, self.tensor) if self.tensor is not None else final)
        return T.Compose(steps)


def create_anatomy_transforms(data: TransformSettings) -> AnatomyTransforms:
    """Build ``data.transform`` with ``data.anatomy``'s parameters.

    Returns:
        ``AnatomyTransforms(pil, tensor, keep_randaug, names)``; unpacks as ``pil_fn, tensor_fn, keep_randaug``.
        With ``data.transform == ""`` both functions are None and RandAugment stays on.

    Raises:
        ValueError: An unknown name or a bad parameter (the message names the config key).
    """
    parts = parse_transform(data.transform)
    a = data.anatomy
    if any(p.name.startswith("patch_shuffle") for p in parts) and data.image_size % a.patch_size:
        raise ValueError(f"data.anatomy.patch_size={a.patch_size} does not divide data.image_size={data.image_size}")
    pil = [p.build(data.anatomy) for p in parts if p.stage == "pil"]
    tensor = [p.build(data.anatomy) for p in parts if p.stage == "tensor"]

    def chain(fns: list[Callable[[Any], Any]]) -> Callable[[Any], Any] | None:
        return None if not fns else fns[0] if len(fns) == 1 else T.Compose(fns)

    return AnatomyTransforms(pil=chain(pil), tensor=chain(tensor),
                             keep_randaug=all(p.keep_randaug for p in parts), names=[p.name for p in parts])
