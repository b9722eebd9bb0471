"""Bias anatomy: named transformations that keep one kind of information (Zeng, Yin & Liu 2024; resolution and
codec controls), applied to train AND val images by ``data.transform`` (:mod:`.transforms` is the registry)."""
