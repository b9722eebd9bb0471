"""Dataset classification (Liu & He's headline experiment): train a source classifier, report val top-1."""

from dsbias.classify.pipeline import main

__all__ = ["main"]
