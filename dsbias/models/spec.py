"""Backbone specs: the one string that names a frozen backbone (``--backbone SPEC``), and the optional extra each
kind needs. Light on purpose (no model library is imported here), so a config can be checked cheaply.

==============  ==========================================================  =====================
spec            what                                                        needs
==============  ==========================================================  =====================
``run:DIR``     a dsbias run's exported backbone (``backbone.json``)         -
``timm:NAME``   a timm model (``--weights FILE``, else timm's published)     -
``open_clip:A`` the image tower of an open_clip model: a built-in arch       ``pip install '.[clip]'``
                (``ViT-B-32``), a model-config ``.json``, ``local-dir:PATH``
                or ``hf-hub:ORG/REPO``
``hf:P``        a ``transformers`` vision model (``AutoModel`` +           ``pip install '.[hf]'``
                ``AutoImageProcessor``) from a directory or a hub id
==============  ==========================================================  =====================
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from dsbias.errors import UserError
from dsbias.typedconfig import ConfigError

# kind -> (import name, optional extra that provides it)
KINDS: dict[str, tuple[str, str] | None] = {
    "run": None,
    "timm": None,
    "open_clip": ("open_clip", "clip"),
    "hf": ("transformers", "hf"),
}


@dataclass(frozen=True)
class BackboneSpec:
    """A parsed ``KIND:NAME`` spec.

    Attributes:
        kind: ``run``, ``timm``, ``open_clip`` or ``hf``.
        name: Everything after the first colon (a run dir, a model name, ``local-dir:PATH``...).
    """

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    def short(self) -> str:
        """A table label: the kind and the name, paths cut to their last part (``hf:dinov2-small``)."""
        name = self.name
        for prefix in ("local-dir:", "hf-hub:"):
            name = name.removeprefix(prefix)
        if "/" in name and (Path(name).expanduser().exists() or name.startswith((".", "/", "~"))):
            name = Path(name.rstrip("/")).name
        return f"{self.kind}:{Path(name).stem if name.endswith('.json') else name}"

    def slug(self) -> str:
        """A file-system-safe form of :meth:`short` (run-dir names)."""
        return re.sub(r"[^A-Za-z0-9._-]+", "-", self.short().replace(":", "-")).strip("-")


def parse_spec(text: str) -> BackboneSpec:
    """``"timm:vit_small_patch14_dinov2"`` -> ``BackboneSpec("timm", "vit_small_patch14_dinov2")``.

    Raises:
        ConfigError: No ``KIND:`` prefix, an unknown kind, or nothing after it.
    """
    kind, sep, name = text.partition(":")
    if not sep or kind not in KINDS:
        raise ConfigError(f"extract.backbone={text!r}: expected KIND:NAME with KIND one of "
                          f"{', '.join(KINDS)} (e.g. timm:vit_small_patch14_dinov2, hf:facebook/dinov2-small)")
    if not name.strip():
        raise ConfigError(f"extract.backbone={text!r}: nothing after '{kind}:'")
    return BackboneSpec(kind, name.strip())


def require_extra(spec: BackboneSpec) -> None:
    """Stop with one line naming the extra to install when the spec's library is missing.

    Raises:
        UserError: The library of ``spec`` is not installed.
    """
    need = KINDS[spec.kind]
    if need is not None and importlib.util.find_spec(need[0]) is None:
        module, extra = need
        raise UserError(f"--backbone {spec}: needs {module}, which is not installed; install the optional extra: "
                        f"pip install -e '.[{extra}]' (or pip install 'dsbias[{extra}]')")
