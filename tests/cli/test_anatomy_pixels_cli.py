"""``tools/anatomy_pixels.py`` checks every ``--transforms`` name before it draws data or fits anything."""

from __future__ import annotations

from dsbias.cli.anatomy_pixels import main


def test_unknown_transform_stops_before_any_work(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--transforms", "reference,edges", "data=toy"]) == 2
    assert "--transforms: data.transform=edges: unknown transformation 'edges'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # no manifest drawn
