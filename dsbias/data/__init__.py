"""Data layer: sources -> manifest (seeded, balanced, disjoint split, de-duplicated) -> mixed dataset -> loader."""

from dsbias.data.dataset import MixedDataset
from dsbias.data.decode import DecodeError, ImageInfo, decode_image
from dsbias.data.loader import create_loader
from dsbias.data.manifest import Manifest, ShortSourceError, build_manifest, load_or_build_manifest
from dsbias.data.sources import create_source, create_sources, expand_sources, register_source
from dsbias.data.transforms import create_eval_transform

__all__ = [
    "DecodeError", "ImageInfo", "Manifest", "MixedDataset", "ShortSourceError", "build_manifest",
    "create_eval_transform", "create_loader", "create_source", "create_sources", "decode_image",
    "expand_sources", "load_or_build_manifest", "register_source",
]
