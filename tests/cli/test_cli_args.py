"""The argument layer every script shares: config, out and overrides in any order; one-line errors."""

from pathlib import Path

import pytest

from dsbias.cli import args as cli
from dsbias.cli.classify import main as classify_main


def _load(argv: list[str]):
    return cli.load(cli.parse(cli.parser("test", ""), argv))


def test_cli_parses_config_out_and_overrides(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("data: toy\ntrain: {samples: 64}\n")
    cfg = _load(["--config", str(f), "--out", str(tmp_path / "run"), "train.batch_size=8"])
    assert cfg.train.samples == 64 and cfg.train.batch_size == 8 and cfg.out == str(tmp_path / "run")


def test_overrides_may_sit_before_and_after_flags(tmp_path: Path):
    """Users write `probe/classify.py data=X --out Y model=Z`; argparse alone says 'unrecognized arguments'."""
    cfg = _load(["data=toy", "--out", str(tmp_path / "r"), "model=resnet18", "train.samples=96"])
    assert [s.name for s in cfg.data.sources] == ["alpha", "beta", "gamma"]
    assert cfg.model.name == "resnet18" and cfg.train.samples == 96 and cfg.out == str(tmp_path / "r")


def test_script_main_takes_intermixed_overrides(tmp_path: Path, monkeypatch):
    """The real script entry point, stopped right after the config is resolved."""
    seen = {}
    monkeypatch.setattr("dsbias.cli.classify.classify", lambda cfg: seen.setdefault("cfg", cfg))
    assert classify_main(["data=toy", "--out", str(tmp_path / "r"), "model=resnet18"]) == 0
    assert seen["cfg"].model.name == "resnet18" and seen["cfg"].out == str(tmp_path / "r")


def test_user_error_is_one_line_and_exit_2(capsys):
    assert classify_main(["data=toy", "data.bogus=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown key 'data.bogus'") and "\n" not in err


def test_debug_shows_the_traceback():
    from dsbias.typedconfig import ConfigError

    with pytest.raises(ConfigError):
        classify_main(["data=toy", "data.bogus=1", "--debug"])


def test_run_dir_excludes_a_config(tmp_path: Path):
    with pytest.raises(Exception, match="--run DIR uses that run's config"):
        cli.load(cli.parse(cli.parser("t", "", run=True), ["--run", str(tmp_path), "data=toy"]))
