"""An image that changed after the manifest was drawn stops a run with one line, even from a DataLoader worker."""

from __future__ import annotations

from conftest import write_images
from torch.utils.data import DataLoader

from dsbias.cli.args import guarded
from dsbias.config import load_config
from dsbias.data.dataset import MixedDataset
from dsbias.data.manifest import build_manifest
from dsbias.data.views import create_eval_transform


def test_changed_file_is_one_line_from_a_worker(tmp_path, capsys):
    for name, colour in (("a", (200, 0, 0)), ("b", (0, 0, 200))):
        write_images(tmp_path / name, 6, colour)
    srcs = ", ".join(f"{{name: {n}, kind: folder, path: '{tmp_path / n}'}}" for n in "ab")
    cfg = load_config(None, [f"data.sources=[{srcs}]", "data.per_source={train: 4, val: 2}", "data.num_workers=0"])
    manifest = build_manifest(cfg.data)
    ds = MixedDataset.from_config(manifest, "train", create_eval_transform(16), cfg.data)
    (tmp_path / "a" / ds.rows[0]["item"]).write_bytes(b"<html>gone</html>")

    @guarded
    def main(argv):
        for _ in DataLoader(ds, batch_size=2, num_workers=1):
            pass

    assert main([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: data.sources[a]: img_") and "no longer decodes" in err[0]
    assert err[0].endswith("in a new run dir)")
