"""The ``backbones`` study: how separable the sources are in the feature space of models users already have
(DINOv2, CLIP, SigLIP, an MAE checkpoint...), each read against the same architecture at a random init.

Every entry of ``backbones=[...]`` (a spec, or a mapping of ``extract`` keys: ``backbone``, ``weights``, ``pool``,
``layer``, ``kwargs``, ``init``) becomes two runs of ``ssl/extract.py`` (its weights, and ``init=random``), each
probed by every feature probe; the report adds a weights-vs-random table and one figure (accuracy per backbone,
chance line, 95% CI). What the weights add over the random init is what they learned, not the architecture.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from dsbias.errors import UserError
from dsbias.models.spec import parse_spec
from dsbias.studies.figures import plot_backbones

ENTRY_KEYS = {"backbone", "weights", "pool", "layer", "kwargs", "init"}
EXAMPLE = ("backbones=[timm:vit_small_patch14_dinov2.lvd142m, hf:/models/dinov2-small, "
           "{backbone: 'timm:vit_base_patch16_224', weights: /w/vit.safetensors}]")


def parse_backbones(value: Any) -> tuple[dict[str, Any], ...]:
    """The study's list from ``backbones=VALUE``: a YAML list (or a ``.yaml`` file holding one) of specs or
    mappings of ``extract`` keys; each entry comes back as a mapping with ``backbone``.

    Raises:
        UserError: Not a list, an entry without ``backbone``, an unknown key or a bad spec.
    """
    if isinstance(value, str) and value.endswith((".yaml", ".yml")):
        if not Path(value).is_file():
            raise UserError(f"backbones={value}: no such file")
        value = yaml.safe_load(Path(value).read_text())
    if not isinstance(value, list) or not value:
        raise UserError(f"backbones: expected a non-empty list, e.g. {EXAMPLE}")
    entries = []
    for i, e in enumerate(value):
        entry = {"backbone": e} if isinstance(e, str) else e
        if not isinstance(entry, dict) or "backbone" not in entry:
            raise UserError(f"backbones[{i}]: expected a spec or a mapping with 'backbone', got {e!r}")
        if set(entry) - ENTRY_KEYS:
            raise UserError(f"backbones[{i}]: unknown key(s) {sorted(set(entry) - ENTRY_KEYS)}; known: "
                            f"{', '.join(sorted(ENTRY_KEYS))}")
        parse_spec(str(entry["backbone"]))
        entries.append(dict(entry))
    return tuple(entries)


def backbone_runs(entries: tuple[dict[str, Any], ...]) -> list[tuple[str, tuple[str, ...], dict[str, Any]]]:
    """``(key, overrides, labels)`` per run: each entry with its weights and at a random init (an entry that is
    already ``init: random`` runs once)."""
    runs, seen = [], set()
    for entry in entries:
        spec = parse_spec(str(entry["backbone"]))
        for init in (["random"] if entry.get("init") == "random" else ["pretrained", "random"]):
            keep = {k: v for k, v in entry.items() if k != "init" and not (init == "random" and k == "weights")}
            over = (*(f"extract.{k}={json.dumps(v)}" for k, v in keep.items()), f"extract.init={init}")
            key = f"{spec.slug()}-{'weights' if init == 'pretrained' else 'random'}"
            n = 2
            while key in seen:  # the same spec twice (another pooling or layer): number it
                key = f"{spec.slug()}-{n}-{'weights' if init == 'pretrained' else 'random'}"
                n += 1
            seen.add(key)
            name = spec.short() + "".join(f" {k}={entry[k]}" for k in ("pool", "layer") if k in entry)
            state = "weights" if init == "pretrained" else "random init"
            runs.append((key, over, {"label": f"{name} · {state}", "backbone": name, "init": init,
                                     "arch": str(spec), "method": "frozen", "transform": "none"}))
    return runs


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def backbones_section(entries: list[dict[str, Any]], fig_dir: Path) -> list[str]:
    """The report's weights-vs-random-init table and the accuracy-per-backbone figure."""
    plot_backbones(entries, fig_dir / "backbones.png")
    by = {(e["backbone"], e["init"], e["probe"]): e for e in entries if e.get("backbone")}
    lines = ["What the weights add over the same architecture at a random init (val top-1 %, 95% CI):", "",
             "| backbone | probe | weights | random init | Δ |", "|---|---|---|---|---|"]
    for (name, init, probe), e in by.items():
        r = by.get((name, "random", probe))
        if init != "pretrained" or r is None:
            continue
        (lo, hi), (rlo, rhi) = e["pooled_ci"], r["pooled_ci"]
        lines.append(f"| {name} | {probe} | {_pct(e['mean'])} ({_pct(lo)}–{_pct(hi)}) | {_pct(r['mean'])} "
                     f"({_pct(rlo)}–{_pct(rhi)}) | {100 * (e['mean'] - r['mean']):+.1f} |")
    return [*lines, "", "![accuracy per backbone](figures/backbones.png)", ""]
