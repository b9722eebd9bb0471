"""Probes on cached features: weighted kNN (faiss) and a linear layer, each with honest statistics."""

from dsbias.probes.knn import knn_search, knn_vote, run_knn
from dsbias.probes.linear import run_linear

__all__ = ["knn_search", "knn_vote", "run_knn", "run_linear"]
