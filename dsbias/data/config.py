"""The ``data`` section: the sources, how many images of each, the split and how images are read."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from dsbias.anatomy.config import AnatomyConfig
from dsbias.typedconfig import ConfigError

GROUP_KINDS = ("regex", "dir", "column", "key")


@dataclass
class SourceConfig:
    """One named image collection.

    Attributes:
        name: Source name, shown in every table (e.g. ``yfcc``). An ``imagefolder`` or ``list`` entry that
            expands to several sources names each one after its subfolder or ``source`` column value.
        kind: ``folder`` (all images under ``path``, recursively), ``imagefolder`` (``path/{train,val}/<source>/``:
            one entry gives every source and the official split), ``webdataset`` (``.tar`` shards),
            ``list`` (a ``.txt``/``.csv``/``.parquet`` file of image paths), ``parquet`` (parquet files with the
            encoded image in a column), ``hf`` (a Hugging Face ``datasets`` dataset on disk) or ``toy``
            (procedural, no files).
        path: ``folder``/``imagefolder``: root directory. ``webdataset``: shard pattern with braces or globs
            (``/data/cc/{00000..00099}.tar``, ``/data/cc/*.tar``). ``list``: the list file. ``parquet``: a file,
            a directory (every ``*.parquet`` under it) or a glob (``/data/cc/train-*.parquet``). ``hf``: the
            directory of ``save_to_disk``, or a local dataset directory ``datasets.load_dataset`` reads.
        select: ``imagefolder``/``list``/``parquet``/``hf``: only these sources (subfolders / ``source`` column
            values); empty means all found, sorted. An entry selecting exactly one keeps its own ``name``.
        root: ``list``: directory that relative paths in the file are joined to (default: the file's folder).
        path_column: ``list`` (csv/parquet): column holding the image path.
        source_column: ``list``/``parquet``/``hf``: column holding the source name; used when the data has it
            (``''``: never). A class-label column gives its class names.
        image_column: ``parquet``/``hf``: column holding the encoded image (binary or a ``{bytes, path}``
            struct, the ``datasets`` Image feature); empty means the first such column.
        split: ``hf``: the split to read (``train``...); may be empty when the dataset has one split.
        bias: Toy only: strength of this source's capture signature; 0 makes all toy sources identical.
        signature: Toy only: which capture effects carry the signature
            (``color``, ``noise``, ``blur``, ``jpeg``, ``size``).
        signature_id: Toy only: which signature this source gets; default = its rank among toy sources.
        native_size: Toy only: side of the rendered image in pixels; 0 means ``data.image_size``.
        scene_size: Toy only: images per *scene* (0: every image independent). A scene has its own content and
            a small signature of its own; its images are crops of it, drawn one scene after another, with items
            ``<scene>/<crop>`` (so ``data.group={dir: 0}`` groups them): the crops-of-one-photo case.
        scene_signature: Toy only: strength of each scene's own colour cast (0..1, like ``bias``).
    """

    name: str = ""
    kind: str = "folder"
    path: str | None = None
    select: list[str] = field(default_factory=list)
    root: str | None = None
    path_column: str = "path"
    source_column: str = "source"
    image_column: str = ""
    split: str = ""
    bias: float = 0.5
    signature: list[str] = field(default_factory=lambda: ["color", "noise", "blur", "jpeg"])
    signature_id: int | None = None
    native_size: int = 0
    scene_size: int = 0
    scene_signature: float = 0.2


@dataclass
class GroupConfig:
    """How each image gets a group id: images that belong together (the crops of one photo, one uploader's
    burst, the frames of one video). A group never straddles train and val, and the intervals and tests
    resample whole val groups. Set at most one field; none set means every image is its own group.

    Attributes:
        regex: Searched in the item path (relative to the source's root; ``shard/member`` in shards); the first
            capture group is the id (the whole match without one). E.g. ``'([^/]+)__[^/]*$'`` for files named
            ``GROUP__rest``.
        dir: The N-th directory of the item path (0 = the first; negative counts from the end: -1 = the folder
            holding the file).
        column: ``list`` sources: the value of this column of the list file.
        key: ``webdataset`` sources: the value of this key of the sample's ``.json``.
    """

    regex: str | None = None
    dir: int | None = None
    column: str | None = None
    key: str | None = None

    @property
    def kind(self) -> str | None:
        """Which field is set (``regex``, ``dir``, ``column``, ``key``), or None."""
        set_ = [k for k in GROUP_KINDS if getattr(self, k) is not None]
        return set_[0] if set_ else None

    def check(self) -> None:
        """At most one way of grouping; a regex that compiles."""
        set_ = [k for k in GROUP_KINDS if getattr(self, k) is not None]
        if len(set_) > 1:
            raise ConfigError(f"data.group: {set_} are all set; give one of regex, dir, column, key")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as e:
                raise ConfigError(f"data.group.regex={self.regex!r}: not a regular expression ({e})") from None


@dataclass
class SplitCounts:
    """Images per source in each split."""

    train: int = 1000
    val: int = 100


@dataclass
class DataConfig:
    """A mix of sources with a seeded, balanced, disjoint train/val split.

    Attributes:
        sources: The sources; their order gives the source ids (0..S-1).
        per_source: Images drawn per source and split (equal by default, so chance = 1/S).
        image_size: Side of the square network input.
        crop_pct: Eval transform: resize the shorter side to ``image_size / crop_pct``, then center-crop.
        seed: Seed of the sampling and of the train/val split.
        pseudo: If K > 0, the single source is cut into K disjoint random pseudo-sources (Liu & He Table 6).
        allow_fewer: A source with fewer usable images than asked gives all it has (and says so)
            instead of stopping the run.
        max_pixels: Images with more pixels are skipped as decompression bombs.
        max_short_side: Load-time cap: every decoded image whose shorter side is longer is resized to it
            (bicubic, aspect kept; the same kernel as ``tools/prepare.py``) before anything else sees it, in
            training, evaluation and extraction alike. Liu & He's 500 px; 0 = off (native size). Recorded in
            the manifest summary; preparing shards once is faster (see docs/data.md).
        num_workers: DataLoader worker processes per training process; ``null`` (default): the CPUs this
            process may use divided among the processes of this machine, at most 10 (Liu & He's setting), see
            :meth:`loader_workers`. Each worker holds ``prefetch_factor`` (2) batches in shared memory
            (``/dev/shm``): give containers ``--shm-size`` or ``--ipc=host`` (docs/pretraining.md).
        cache_decoded: Decode (and cap) every image of the split once when the run starts, in the loader's
            workers, and keep it in the training process, whose loader workers then share it: for data that
            fits in memory (per training process: images x H x W x 4 bytes). Results are the same: decoding is
            deterministic and the random augmentation comes after.
        manifest: A manifest written by ``tools/manifest.py`` (``.../manifest.jsonl``): runs read exactly its rows
            instead of sampling; its sources must match ``sources``.
        group: Which images belong together (:class:`GroupConfig`); unset: every image its own group. With
            groups, each source's images are split into train and val by group (counts as close to
            ``per_source`` as the group sizes allow) and pseudo-sources get whole groups.
        dedup: Exact (content-hash) duplicates among the sampled images: ``drop`` removes cross-source copies
            (all of them), cross-split copies (the val one) and within-source copies (all but one) and draws
            replacements so counts stay balanced; ``report`` only counts them; ``ignore`` skips the check (not
            ``off``: YAML reads that as false).
        official_split: Sources with an official split (``imagefolder`` with ``train/`` and ``val/``) give train
            rows from train and val rows from val; false pools both and splits at random.
        transform: Bias-anatomy transformation(s) applied to train AND val images, ``+``-joined
            (``grayscale``, ``lpf``, ``patch_shuffle_fixed``, ``canonical``, ``grayscale+lpf``...; empty: none).
            See :mod:`dsbias.anatomy.transforms` for the list and where each applies.
        anatomy: Parameters of those transformations.
    """

    sources: list[SourceConfig] = field(default_factory=list)
    per_source: SplitCounts = field(default_factory=SplitCounts)
    image_size: int = 64
    crop_pct: float = 0.875
    seed: int = 0
    pseudo: int = 0
    allow_fewer: bool = False
    max_pixels: int = 100_000_000
    max_short_side: int = 0
    num_workers: int | None = None
    cache_decoded: bool = False
    manifest: str | None = None
    group: GroupConfig = field(default_factory=GroupConfig)
    dedup: Literal["drop", "report", "ignore"] = "drop"
    official_split: bool = True
    transform: str = ""
    anatomy: AnatomyConfig = field(default_factory=AnatomyConfig)

    def loader_workers(self) -> int:
        """``num_workers``, or the machine's share when it is ``null`` (:func:`dsbias.data.loader.default_workers`)."""
        from dsbias.data.loader import default_workers

        return default_workers() if self.num_workers is None else self.num_workers

    def check(self) -> None:
        """Cross-field checks that types alone cannot express (source kinds are checked by the registry,
        :func:`dsbias.data.sources.registry.check_sources`)."""
        if not self.sources:
            raise ConfigError("data.sources: no sources given (use data=toy or a data config file)")
        names = [s.name for s in self.sources]
        for i, s in enumerate(self.sources):
            if not s.name:
                raise ConfigError(f"data.sources[{i}].name: empty")
            # Keys that only some kinds read: set on another kind they would silently do nothing.
            if s.split and s.kind != "hf":
                raise ConfigError(f"data.sources[{i}].split: only hf sources have splits (this one is {s.kind}); "
                                  "pick parquet files by path, e.g. '/data/x/test-*.parquet'")
            if s.image_column and s.kind not in ("parquet", "hf"):
                raise ConfigError(f"data.sources[{i}].image_column: only parquet and hf sources have image columns "
                                  f"(this one is {s.kind})")
        if len(set(names)) != len(names):
            raise ConfigError(f"data.sources: duplicate names {names}")
        if self.pseudo == 1 or self.pseudo < 0:
            raise ConfigError(f"data.pseudo={self.pseudo}: use 0 (off) or K >= 2")
        if self.per_source.train < 1 or self.per_source.val < 0:
            raise ConfigError("data.per_source: train must be >= 1 and val >= 0")
        self.group.check()
        for s in self.sources:
            if s.scene_size < 0 or not 0 <= s.scene_signature <= 1:
                raise ConfigError(f"data.sources[{s.name}]: scene_size must be >= 0 and scene_signature in [0, 1]")
        if self.image_size < 8:
            raise ConfigError(f"data.image_size={self.image_size}: too small")
        if not 0 < self.crop_pct <= 1:
            raise ConfigError(f"data.crop_pct={self.crop_pct}: must be in (0, 1]")
        if self.max_short_side < 0:
            raise ConfigError(f"data.max_short_side={self.max_short_side}: use 0 (off) or a side in pixels (500)")
        if self.transform:
            from dsbias.anatomy.transforms import create_anatomy_transforms

            try:
                create_anatomy_transforms(self)  # unknown names and bad parameters fail here, not mid-training
            except ValueError as e:
                raise ConfigError(str(e)) from None

