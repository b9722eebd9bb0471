"""Methods: each one an ``nn.Module`` whose ``forward(batch)`` returns a dict with ``"loss"`` (:mod:`.base`).

``mae`` and ``mocov3`` learn without source labels; ``supervised`` is the source classifier, with its views
(:mod:`.augment`, :mod:`.corrupt`). Built by name with :func:`dsbias.methods.registry.create_method`.
"""
