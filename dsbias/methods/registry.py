"""Methods by name: ``method.name`` -> factory. Factories take the run's config and the number of sources."""

from __future__ import annotations

from collections.abc import Callable

from dsbias.methods import mae, mocov3, supervised
from dsbias.methods.base import Method, MethodSettings
from dsbias.typedconfig import ConfigError

METHODS: dict[str, Callable[[MethodSettings, int], Method]] = {
    "mae": mae.create_mae,
    "mocov3": mocov3.create_mocov3,
    "supervised": supervised.create_supervised,
}


def create_method(cfg: MethodSettings, num_sources: int) -> Method:
    """Build the method ``cfg.method.name`` around a fresh backbone.

    Args:
        cfg: The run config (``data``, ``model``, ``method`` sections).
        num_sources: Number of source labels S (used only by the supervised method).
    """
    if cfg.method.name not in METHODS:
        raise ConfigError(f"method.name: unknown method '{cfg.method.name}'; known: {sorted(METHODS)}")
    method = METHODS[cfg.method.name](cfg, num_sources)
    assert isinstance(method, Method), f"method {cfg.method.name} does not implement the Method interface"
    return method
