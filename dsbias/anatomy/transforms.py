"""Named, composable bias-anatomy transformations (Zeng, Yin & Liu 2024, and resolution/codec controls).

``data.transform`` names one or more transformations joined by ``+`` (``grayscale+lpf``); they are applied to
train AND val images, so accuracy under a transformation measures what the kept information alone is worth.
Each declares *where* it applies, following Zeng et al.'s Table 2:

- ``pil`` stage: on the decoded PIL image (after the load-time cap ``data.max_short_side``, if any), before any
  augmentation (crop, flip, RandAugment);
- ``tensor`` stage: on the network-size ``[3, H, W]`` tensor in [0, 1], after augmentation and ``ToTensor``,
  before ``Normalize`` (so normalisation is the same in train and eval, unlike the original ``seg`` case).

and the rest of the reference's training view for it: whether RandAugment stays on (``keep_randaug``),
whether the random horizontal flip stays on (``flip``) and whether the network input is normalised with the
ImageNet mean and std (``normalize``; off, the input stays in [0, 1]). Zeng et al. train edge maps with a
random resized crop only (no flip, no normalisation), HOG and the frequency filters with crop and flip but no
normalisation, and evaluate all four without normalisation. A composition keeps each of the three only if every
part does. Within a stage, parts run in the order written.

==========================  ======  =======  ====  ====  ===================================================
name                        stage   RandAug  flip  norm  keeps
==========================  ======  =======  ====  ====  ===================================================
``grayscale``               pil     yes      yes   yes   luma only (three equal channels)
``mean_rgb``                pil     yes      yes   yes   the image's mean colour (a constant image)
``jpeg``                    pil     yes      yes   yes   everything, after a JPEG round trip at ``jpeg_quality``
``downup``                  pil     yes      yes   yes   detail coarser than ``downup_size`` (shorter side)
``canonical``               pil     yes      yes   yes   content at one size and codec (the re-encode control)
``canny``                   pil     no       no    no    binary edges, OpenCV on RGB (``canny_low`` / ``_high``)
``hog``                     pil     no       yes   no    HOG picture at 500 px (``hog_cell``, ``hog_orientations``)
``lpf`` / ``hpf``           tensor  no       yes   no    grayscale below / above ``freq_threshold`` (``filter``)
``pixel_shuffle_fixed``     tensor  yes      yes   yes   pixel values, one permutation for all images
``pixel_shuffle_random``    tensor  yes      yes   yes   pixel values, a permutation per image
``patch_shuffle_fixed``     tensor  yes      yes   yes   ``patch_size`` tiles, one permutation for all images
``patch_shuffle_random``    tensor  yes      yes   yes   ``patch_size`` tiles, a permutation per image
==========================  ======  =======  ====  ====  ===================================================

``canny`` needs OpenCV and ``hog`` OpenCV and scikit-image: the ``anatomy`` extra (``pip install
'dsbias[anatomy]'``); without it they stop when the config loads.

The original code's names (``fixed_pixel_shuffle``, ``random_patch_shuffle``...) are accepted as aliases.
Model-based transformations (``seg``, ``det``, ``sam``, ``depth``, ``vae``, ``caption``, ``uncon_gen``,
``text_to_image``) and ``sift`` (OpenCV) are recognised but not built in: they stop with a message saying what
they need (nothing downloads weights).

Wiring (every view that feeds a network, train and eval, must use the same ``AnatomyTransforms``)::

    a = create_anatomy_transforms(cfg.data)
    # eval / feature extraction (dsbias.features.extract):
    create_eval_transform(size, crop_pct, *a.normalization(mean, std), pil_fn=a.pil, tensor_fn=a.tensor)
    # supervised training view (timm create_transform(..., separate=True) -> primary, secondary, final):
    a.compose([primary, secondary, corruption], final, randaug=secondary)
    # a view built from an existing eval Compose [Resize, CenterCrop, Compose(ToTensor, Normalize)]:
    a.compose([resize, center_crop, corruption], to_tensor_normalize)

``compose`` puts ``a.pil`` first, drops ``randaug`` when ``keep_randaug`` is false, and inserts ``a.tensor``
right after the ``ToTensor`` inside ``final``. The views read ``a.flip`` (timm's ``hflip`` set to 0 when false)
and ``a.normalization(mean, std)`` (the mean and std to normalise with: ``(0, 0, 0), (1, 1, 1)`` when
``normalize`` is false, so the input stays in [0, 1] and ``backbone.json`` records what was done).
Mixup/CutMix act on batches and are not affected.
"""

from __future__ import annotations

import importlib.util
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
from dsbias.typedconfig import ConfigError


class TransformSettings(Protocol):
    """What the transformations read of the data config (:class:`dsbias.data.config.DataConfig` has it)."""

    transform: str
    anatomy: AnatomyConfig
    image_size: int


@dataclass(frozen=True)
class TransformSpec:
    """One named transformation: where it applies, the training view it gets, what it needs, how to build it.

    Attributes:
        name: Its ``data.transform`` name.
        stage: ``pil`` (before augmentation) or ``tensor`` (after augmentation, before ``Normalize``).
        keep_randaug: RandAugment stays in the training view.
        build: Makes the transformation from ``data.anatomy``.
        flip: The random horizontal flip stays in the training view.
        normalize: The network input is normalised (ImageNet mean and std); false keeps it in [0, 1].
        requires: Modules of the ``anatomy`` extra it imports.
    """

    name: str
    stage: str
    keep_randaug: bool
    build: Callable[[AnatomyConfig], Callable[[Any], Any]]
    flip: bool = True
    normalize: bool = True
    requires: tuple[str, ...] = ()


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
    # Zeng et al.'s views: canny (like seg) gets a random resized crop only; hog and the filters keep the flip;
    # none of the four is normalised, in training or evaluation (understand_bias dataset.py, build_transform).
    TransformSpec("canny", "pil", False, lambda a: CannyEdges(a.canny_low, a.canny_high, a.canny_max_short_side),
                  flip=False, normalize=False, requires=("cv2",)),
    TransformSpec("hog", "pil", False, lambda a: HOGImage(a.hog_cell, a.hog_orientations, a.hog_short_side),
                  normalize=False, requires=("cv2", "skimage")),
    TransformSpec("lpf", "tensor", False, _freq(highpass=False), normalize=False),
    TransformSpec("hpf", "tensor", False, _freq(highpass=True), normalize=False),
    TransformSpec("pixel_shuffle_fixed", "tensor", True, _shuffle(pixel=True, fixed=True)),
    TransformSpec("pixel_shuffle_random", "tensor", True, _shuffle(pixel=True, fixed=False)),
    TransformSpec("patch_shuffle_fixed", "tensor", True, _shuffle(pixel=False, fixed=True)),
    TransformSpec("patch_shuffle_random", "tensor", True, _shuffle(pixel=False, fixed=False)),
]}
_PACKAGES = {"cv2": "OpenCV (opencv-python-headless)", "skimage": "scikit-image"}
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
    "sift": "OpenCV's SIFT keypoints drawn on black (Zeng et al.)",
}


def parse_transform(spec: str) -> list[TransformSpec]:
    """The parts of a ``data.transform`` string, in order (``""`` -> ``[]``).

    Raises:
        ValueError: An unknown or repeated name, a model-based one (the message says what it needs), or one whose
            optional dependencies are not installed.
    """
    names = [n.strip() for n in spec.split("+")] if spec.strip() else []
    out: list[TransformSpec] = []
    for raw in names:
        name = ALIASES.get(raw, raw)
        if name in NEEDS_MODEL:
            raise ConfigError(f"data.transform={spec}: '{name}' needs {NEEDS_MODEL[name]}, which dsbias does not "
                             "build in or download; transform the images offline (data.anatomy.model_path is "
                             "reserved for it) and point a folder source at the result")
        if name not in TRANSFORMS:
            known = ", ".join([*TRANSFORMS, *ALIASES])
            raise ConfigError(f"data.transform={spec}: unknown transformation '{raw}'; known: {known}")
        if any(p.name == name for p in out):
            raise ConfigError(f"data.transform={spec}: '{name}' appears twice")
        missing = [m for m in TRANSFORMS[name].requires if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(f"data.transform={spec}: '{name}' needs {' and '.join(_PACKAGES[m] for m in missing)}, "
                             "not installed: pip install 'dsbias[anatomy]'")
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
        flip: Whether the training view keeps the random horizontal flip.
        normalize: Whether views normalise the input (see :meth:`normalization`).
    """

    pil: Callable[[Any], Any] | None
    tensor: Callable[[Any], Any] | None
    keep_randaug: bool
    names: list[str]
    flip: bool = True
    normalize: bool = True

    def __iter__(self):
        """Unpack as ``pil_fn, tensor_fn, keep_randaug``."""
        return iter((self.pil, self.tensor, self.keep_randaug))

    def normalization(
        self, mean: tuple[float, ...], std: tuple[float, ...]
    ) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The ``(mean, std)`` a view normalises with: the given ones, or ``(0, 0, 0), (1, 1, 1)`` (the input
        stays in [0, 1]) when the transformation is not normalised."""
        return (mean, std) if self.normalize else ((0.0,) * len(mean), (1.0,) * len(std))

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
        ``AnatomyTransforms(pil, tensor, keep_randaug, names, flip, normalize)``; unpacks as ``pil_fn, tensor_fn,
        keep_randaug``. With ``data.transform == ""`` both functions are None and the view is unchanged.

    Raises:
        ValueError: An unknown name or a bad parameter (the message names the config key).
    """
    parts = parse_transform(data.transform)
    a = data.anatomy
    if any(p.name.startswith("patch_shuffle") for p in parts) and data.image_size % a.patch_size:
        raise ConfigError(f"data.anatomy.patch_size={a.patch_size} does not divide data.image_size={data.image_size}")
    pil = [p.build(data.anatomy) for p in parts if p.stage == "pil"]
    tensor = [p.build(data.anatomy) for p in parts if p.stage == "tensor"]

    def chain(fns: list[Callable[[Any], Any]]) -> Callable[[Any], Any] | None:
        return None if not fns else fns[0] if len(fns) == 1 else T.Compose(fns)

    return AnatomyTransforms(pil=chain(pil), tensor=chain(tensor), keep_randaug=all(p.keep_randaug for p in parts),
                             names=[p.name for p in parts], flip=all(p.flip for p in parts),
                             normalize=all(p.normalize for p in parts))
