"""Every published number dsbias prints beside its own: Liu & He (arXiv 2403.08632 v1) and Zeng, Yin & Liu
(NeurIPS 2024).

Accuracies are val top-1 in percent on YFCC / CC / DataComp (YCD) at 1M train images per dataset unless a
table says otherwise. Source names are matched one way only, :func:`canonical` (case-insensitive, through
:data:`ALIASES`), so a user's ``yfcc100m`` or ``cc12m`` source finds the paper's row.
"""

from __future__ import annotations

from collections.abc import Iterable

ALIASES = {
    "y": "yfcc", "yfcc": "yfcc", "yfcc100m": "yfcc", "yfcc15m": "yfcc",
    "c": "cc", "cc": "cc", "cc12m": "cc", "cc3m": "cc",
    "d": "datacomp", "datacomp": "datacomp", "datacomp1b": "datacomp", "dc": "datacomp",
    "w": "wit", "wit": "wit",
    "l": "laion", "laion": "laion", "laion2b": "laion", "laion400m": "laion",
    "i": "imagenet", "imagenet": "imagenet", "in21k": "imagenet", "in22k": "imagenet", "imagenet21k": "imagenet",
}
_LETTER = {"yfcc": "Y", "cc": "C", "datacomp": "D", "wit": "W", "laion": "L", "imagenet": "I"}
_ORDER = "YCDWLI"

# Table 2: every 3-way combination, then the 4/5/6-way rows (ConvNeXt-T).
COMBOS = {
    "YCD": 84.7, "YCW": 83.9, "YCL": 85.0, "YCI": 92.7, "YDW": 85.8, "YDL": 72.1, "YDI": 90.2, "YWL": 86.6,
    "YWI": 86.7, "YLI": 91.9, "CDW": 83.6, "CDL": 62.8, "CDI": 82.8, "CWL": 84.3, "CWI": 91.3, "CLI": 84.1,
    "DWL": 71.5, "DWI": 88.9, "DLI": 68.2, "WLI": 90.7, "YCDW": 79.1, "YCDWL": 67.4, "YCDWLI": 69.2,
}
# Table 3 (YCD): architectures.
ARCHS = {"torchvision.alexnet": 77.8, "torchvision.vgg16": 83.5, "resnet50": 83.8, "vit_small_patch16_224": 82.4,
         "convnext_tiny": 84.7, "vit_base_patch16_224": 82.9}
# Fig 2 (YCD): the only number given in the text.
MODEL_SIZE = {"convnext_atto_1_10_uniform": 72.4, "convnext_tiny": 84.7}
# Table 4 (YCD): augmentation x train images per dataset.
AUGMENT = {
    ("none", 10_000): 43.2, ("none", 100_000): 71.9, ("none", 1_000_000): 76.8,
    ("crop", 10_000): 66.1, ("crop", 100_000): 74.5, ("crop", 1_000_000): 84.2,
    ("crop_randaug", 10_000): 70.2, ("crop_randaug", 100_000): 78.0, ("crop_randaug", 1_000_000): 85.0,
    ("full", 10_000): 72.4, ("full", 100_000): 80.1, ("full", 1_000_000): 84.7,
}
# Table 5 (YCD): fixed corruptions of train and val, by preset name.
CORRUPT = {"none": 84.7, "color_jitter_1.0": 81.1, "color_jitter_2.0": 80.2, "noise_0.2": 77.3, "noise_0.3": 75.1,
           "blur_3": 80.9, "blur_5": 78.1, "downsample_64": 78.4, "downsample_32": 68.4}
# Table 6: pseudo-datasets from YFCC, TRAIN accuracy (None = "fail", did not converge); val is ~33%.
PSEUDO_TRAIN = {(100, False): 100.0, (1000, False): 100.0, (10_000, False): 100.0, (100_000, False): None,
                (100, True): 100.0, (1000, True): 100.0, (10_000, True): None, (100_000, True): None}
# Table 7 (YCD, ViT-B): supervised vs linear probe of MAE features.
SSL = {("supervised", "end-to-end"): 82.9, ("mae", "linear"): 78.4}
# Zeng, Yin & Liu Table 1 (YCD, 1M train / 10K val each, ConvNeXt-T, 30 epochs with 2 warmup, 224 px, mean and std
# over 3 samplings and runs). lpf/hpf: ideal filter, radius 40 at 224 px; patch shuffle: 16 px patches. Keys are
# dsbias data.transform names ("" = the reference); the model-based rows cannot be run inside dsbias but are listed
# so that offline results can be set beside them.
# transform -> (mean top-1 %, std %, note)
ZYL_YCD: dict[str, tuple[float, float | None, str]] = {
    "": (82.0, 0.3, "reference"),
    "seg": (69.8, 0.6, "ADE20K palette mask"),
    "det": (61.9, 0.4, "ViTDet-H boxes on white"),
    "caption": (63.8, 0.1, "short captions (long: 66.1 ± 0.2)"),
    "vae": (77.4, 0.3, "SD KL-f4 reconstruction"),
    "canny": (71.0, 0.2, ""),
    "sam": (73.2, 0.6, "SAM contours"),
    "depth": (73.1, 0.2, "Depth-Anything-V2"),
    "pixel_shuffle_random": (52.2, 0.8, ""),
    "pixel_shuffle_fixed": (58.5, 0.5, ""),
    "patch_shuffle_random": (80.1, 0.2, "16 px patches"),
    "patch_shuffle_fixed": (81.2, 0.3, "16 px patches"),
    "mean_rgb": (48.5, 0.7, ""),
    "lpf": (70.4, 0.5, "ideal, radius 40"),
    "hpf": (79.2, 0.2, "ideal, radius 40"),
    "uncon_gen": (77.6, 0.8, "DiT-B/2 per source"),
    "text_to_image": (58.1, 0.4, "SDXL-Turbo"),
    "sift": (65.2, 1.4, "README: 53.3"),
    "hog": (79.9, 0.2, "README: 79.0"),
}


def canonical(name: str) -> str | None:
    """The paper's dataset for a source name, or None (``'YFCC100M'`` -> ``'yfcc'``)."""
    key = name.lower().replace("-", "").replace("_", "")
    return ALIASES.get(key)


def combo_key(sources: Iterable[str]) -> str | None:
    """Table 2 key (``'YCD'``) when every source is one of the paper's datasets, else None."""
    letters = []
    for s in sources:
        c = canonical(s)
        if c is None:
            return None
        letters.append(_LETTER[c])
    if len(set(letters)) != len(letters):
        return None
    return "".join(sorted(letters, key=_ORDER.index))


def is_ycd(sources: Iterable[str]) -> bool:
    """Whether the sources are exactly YFCC, CC and DataComp (the setting of Tables 3-7)."""
    return combo_key(sources) == "YCD"
