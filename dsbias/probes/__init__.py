"""Probes on cached features: weighted kNN with faiss (:mod:`.knn`) and a linear layer (:mod:`.linear`), each
reported with honest statistics and written beside the features (:mod:`.result`)."""
