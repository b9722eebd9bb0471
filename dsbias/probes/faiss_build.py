"""The one faiss build: imported if installed, checked where it is used, with one line saying what to install.

faiss ships as several wheels that all own the same ``faiss/`` package (``faiss-cpu``, ``faiss-gpu``,
``faiss-gpu-cu12``...). Two installed side by side overwrite each other's files, and which one imports depends on
the install order; so dsbias keeps faiss out of its base dependencies, lets the ``cpu`` or ``gpu`` extra choose
one, and refuses to run with two (docs/probes.md, "Which faiss").
"""

from __future__ import annotations

from importlib import metadata
from types import ModuleType

from dsbias.errors import UserError

try:
    import faiss
except ImportError:  # which extra to install is said by require_faiss(), where the kNN is used
    faiss = None

# Distributions that install the ``faiss`` package (PyPI names, normalised to lower case with dashes).
FAISS_DISTRIBUTIONS = ("faiss-cpu", "faiss-gpu", "faiss-gpu-cu11", "faiss-gpu-cu12", "faiss-gpu-cu13")
INSTALL_HINT = "pip install -e '.[cpu]' (or '.[gpu]' on a CUDA machine, never both)"


def installed_builds() -> list[str]:
    """``name==version`` of every installed distribution that owns the ``faiss`` package."""
    found = []
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name in FAISS_DISTRIBUTIONS:
            found.append(f"{name}=={dist.version}")
    return sorted(set(found))


def require_faiss() -> ModuleType:
    """The faiss module, or a :class:`UserError` naming the fix.

    Raises:
        UserError: faiss is not installed, or two builds are installed side by side.
    """
    builds = installed_builds()
    if len(builds) > 1:
        raise UserError(f"two faiss builds own the same faiss/ package ({', '.join(builds)}): "
                        f"pip uninstall -y {' '.join(b.split('==')[0] for b in builds)}, then {INSTALL_HINT}")
    if faiss is None:
        raise UserError(f"faiss is not installed (the kNN probe and the leakage audit need it): {INSTALL_HINT}")
    return faiss
