"""Zeng, Yin & Liu (NeurIPS 2024) Table 1 values, to print beside a user's anatomy table when sources match.

Setting: YFCC, CC, DataComp (1M train / 10K val each), ConvNeXt-T, 30 epochs (2 warmup), 224 px, mean ± std
over 3 data samplings and runs; chance 33.3%. ``lpf``/``hpf``: ideal filter, radius 40 at 224 px; patch shuffle:
16 px patches. Keys are dsbias ``data.transform`` names (``""`` = the reference); the model-based rows cannot be
run inside dsbias but are listed so a user's offline results can be set beside them.
"""

from __future__ import annotations

PAPER_SOURCES = ("yfcc", "cc", "datacomp")
PAPER_SETTING = {"image_size": 224, "freq_threshold": 40.0, "filter": "ideal", "patch_size": 16}

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


def paper_value(transform: str, sources: list[str] | tuple[str, ...]) -> tuple[float, float | None, str] | None:
    """The paper's value for ``transform`` when ``sources`` are exactly YFCC, CC and DataComp (any order, any
    case), else None."""
    if sorted(s.lower() for s in sources) != sorted(PAPER_SOURCES):
        return None
    return ZYL_YCD.get(transform)
