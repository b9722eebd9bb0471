"""Tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dsbias.config import Config, ConfigError, load_config
from dsbias.typedconfig import dump_yaml


def test_defaults_need_sources():
    with pytest.raises(ConfigError, match="data.sources"):
        load_config()


def test_group_override_loads_preset():
    cfg = load_config(None, ["data=toy"])
    assert [s.name for s in cfg.data.sources] == ["alpha", "beta", "gamma"]
    assert cfg.data.sources[0].kind == "toy" and cfg.data.image_size == 64


def test_dotted_override_parses_yaml_value():
    cfg = load_config(None, ["data=toy", "data.per_source.train=7", "optim.betas=[0.8, 0.9]", "train.compile=true"])
    assert cfg.data.per_source.train == 7
    assert cfg.optim.betas == [0.8, 0.9]
    assert cfg.train.compile is True


def test_int_is_accepted_for_float_and_str_from_command_line():
    cfg = load_config(None, ["data=toy", "optim.blr=1", "out=2024"])
    assert cfg.optim.blr == 1.0 and isinstance(cfg.optim.blr, float)
    assert cfg.out == "2024"


def test_exponent_float_without_dot():
    cfg = load_config(None, ["data=toy", "optim.lr=3e-3"])
    assert cfg.optim.lr == 0.003
    with pytest.raises(ConfigError, match="optim.lr: expected"):
        load_config(None, ["data=toy", "optim.lr=fast"])


def test_yes_no_on_off_are_text_for_text_options_and_booleans_for_switches(tmp_path: Path):
    # YAML 1.1 (PyYAML) reads `no` as False: `train.mixed_precision=no`, its own default, was refused.
    cfg = load_config(None, ["data=toy", "train.mixed_precision=no", "train.extract=off", "train.compile=Yes",
                             "out=no"])
    assert (cfg.train.mixed_precision, cfg.train.extract, cfg.train.compile, cfg.out) == ("no", False, True, "no")
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  mixed_precision: no\n  extract: no\n  channels_last: on\n")
    cfg = load_config(path, ["data=toy"])
    assert (cfg.train.mixed_precision, cfg.train.extract, cfg.train.channels_last) == ("no", False, True)
    assert load_config(path, ["data=toy"]) == load_config(None, [
        "data=toy", "train.mixed_precision=no", "train.extract=false", "train.channels_last=TRUE"])
    with pytest.raises(ConfigError, match="train.extract: expected bool"):
        load_config(None, ["data=toy", "train.extract=maybe"])


def test_group_path_loads_user_file(tmp_path: Path):
    f = tmp_path / "mine.yaml"
    f.write_text("sources:\n  - {name: a, kind: folder, path: /x}\n  - {name: b, kind: folder, path: /y}\n"
                 "per_source: {train: 5, val: 2}\n")
    cfg = load_config(None, [f"data={f}"])
    assert [s.path for s in cfg.data.sources] == ["/x", "/y"]
    assert cfg.data.per_source.val == 2


def test_unknown_key_names_key_and_file(tmp_path: Path):
    f = tmp_path / "bad.yaml"
    f.write_text("data: toy\ntrain: {sampels: 10}\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert "train.sampels" in str(e.value) and str(f) in str(e.value)
    assert "\n" not in str(e.value)


def test_wrong_type_names_key_and_origin():
    with pytest.raises(ConfigError, match=r"data.per_source.train: expected int.*command line"):
        load_config(None, ["data=toy", "data.per_source.train=abc"])
    with pytest.raises(ConfigError, match=r"train.compile: expected bool"):
        load_config(None, ["data=toy", "train.compile=3"])


def test_wrong_type_in_preset_names_the_preset(tmp_path: Path):
    f = tmp_path / "d.yaml"
    f.write_text("sources: []\nimage_size: big\n")
    with pytest.raises(ConfigError, match=r"data.image_size: expected int.*d.yaml"):
        load_config(None, [f"data={f}"])


def test_literal_choices_checked():
    with pytest.raises(ConfigError, match="method.name: expected one of"):
        load_config(None, ["data=toy", "method.name=simclr"])


def test_missing_preset():
    with pytest.raises(ConfigError, match="no preset 'nope.yaml'"):
        load_config(None, ["data=nope"])


def test_round_trip(tmp_path: Path):
    cfg = load_config(None, ["data=toy", "data.per_source.train=11", "model.kwargs={img_size: 64}"])
    f = tmp_path / "config.yaml"
    f.write_text(dump_yaml(cfg))
    again = load_config(f)
    assert again == cfg
    assert isinstance(again, Config)
    assert yaml.safe_load(f.read_text())["data"]["per_source"]["train"] == 11


def test_cross_field_validation():
    with pytest.raises(ConfigError, match="data.pseudo"):
        load_config(None, ["data=toy", "data.pseudo=3"])
    with pytest.raises(ConfigError, match="at least two sources"):
        load_config(None, ["data=toy_pseudo", "data.pseudo=0"])
