"""Property tests (hypothesis): random bytes, truncated JPEG/PNG/WebP files, random shards and random sidecar
JSON into the decoder and the shard indexer. Nothing crashes, nothing but a counted :class:`DecodeError`
escapes, and every bad item is counted (issue 13)."""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dsbias.data.decode import DecodeError, decode_image
from dsbias.data.sources.webdataset import ShardSource, index_shard

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _encoded(fmt: str) -> bytes:
    arr = np.random.default_rng(0).integers(0, 255, (24, 20, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt)
    return buf.getvalue()


VALID = {fmt: _encoded(fmt) for fmt in ("JPEG", "PNG", "WEBP")}


def _decodes_or_says_why(data: bytes) -> None:
    try:
        img, info = decode_image(data, max_pixels=1 << 22)
    except DecodeError as e:
        assert e.reason in {"empty", "not_an_image", "truncated", "too_large"}
        return
    assert img.mode == "RGB" and info.width > 0 and info.height > 0 and info.bytes == len(data)


@FAST
@given(st.binary(max_size=512))
def test_random_bytes_into_decoder(data):
    _decodes_or_says_why(data)


@FAST
@given(st.sampled_from(sorted(VALID)), st.floats(0, 1, exclude_max=True), st.binary(max_size=8))
def test_truncated_and_patched_images_into_decoder(fmt, cut, junk):
    data = VALID[fmt]
    _decodes_or_says_why(data[:int(cut * len(data))])
    at = int(cut * len(data))
    _decodes_or_says_why(data[:at] + junk + data[at + len(junk):])  # a few bytes overwritten in place


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@FAST
@given(st.binary(max_size=4096) | st.builds(lambda cut: _tar([("0.png", VALID["PNG"])] * 2)[:cut],
                                            st.integers(0, 4096)))
def test_random_and_truncated_shards_into_indexer(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("shard") / "000.tar"
    path.write_bytes(data)
    items, ignored = index_shard(path, "000.tar")  # never raises: an unreadable shard is counted
    assert isinstance(items, list) and set(ignored) <= {"corrupt_header", "unreadable_shard", "escaping_path"}
    assert items or ignored or not data.strip(b"\0") or len(data) < 512


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=3), max_leaves=8)
SIDE = JSON | st.fixed_dictionaries({"original_width": JSON, "original_height": JSON},
                                    optional={"original_format": JSON, "original_bytes": JSON})


def _valid(v, top: int = 1 << 20) -> bool:
    ok_type = (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
    return ok_type and 1 <= v <= top


def _expect_bad(side) -> bool:
    """The spec, stated independently: a sidecar that is not an object, or whose size keys are both set but
    a value (or the format / byte count, when set) is not valid, is bad; absent or null sizes are not."""
    if not isinstance(side, dict):
        return True
    w, h = side.get("original_width"), side.get("original_height")
    if w is None or h is None:
        return False
    fmt, size = side.get("original_format"), side.get("original_bytes")
    fmt_ok = fmt is None or (isinstance(fmt, str) and fmt.upper() in {"JPG", "TIF"} | set(Image.OPEN))
    return not (_valid(w) and _valid(h) and fmt_ok and (size is None or _valid(size, 1 << 50)))


@FAST
@given(st.lists(SIDE, min_size=1, max_size=4), st.binary(max_size=40))
def test_random_sidecars_into_shard_source(tmp_path_factory, sides, garbage):
    members = []
    for i, side in enumerate(sides):
        members.append((f"{i:03d}.png", VALID["PNG"]))
        try:
            text = json.dumps(side, allow_nan=True).encode()
        except (ValueError, OverflowError):
            text = garbage
        members.append((f"{i:03d}.json", text if i % 3 else garbage if i % 2 else text))
    root = tmp_path_factory.mktemp("side")
    (root / "000.tar").write_bytes(_tar(members))
    src = ShardSource("s", str(root / "000.tar"), max_pixels=1 << 22)
    items = src.list_items()
    assert len(items) == len(sides)
    expected = 0
    for item, (_, raw) in zip(items, members[1::2], strict=True):
        _, info = src.read(item)  # never raises for a bad sidecar
        assert info.width > 0 and info.height > 0 and info.bytes > 0
        try:
            side = json.loads(raw)
        except (ValueError, RecursionError):
            side = raw  # not JSON: bad
        expected += _expect_bad(side)
    assert src.ignored == Counter({"bad_sidecar": expected} if expected else {})
