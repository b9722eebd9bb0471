"""report.html of a made-up run and study: self-contained (no network, images embedded or beside it), every
section present, the verdict from the numbers, and tools/report.py's errors."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import make_report_run, make_report_study
from PIL import Image

from dsbias.cli.report import main as report_main
from dsbias.errors import UserError
from dsbias.report.write import write_html

RUN_SECTIONS = {"verdict", "results", "results-table", "per-source", "confusion", "images", "leakage", "embedding",
                "curves", "provenance"}


class Page(HTMLParser):
    """The ids, image sources, links and scripts of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.ids, self.imgs, self.hrefs, self.ext = set(), [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.imgs.append(a["src"])
        if tag == "a":
            self.hrefs.append(a["href"])
        if tag in ("script", "link", "iframe") and (a.get("src") or a.get("href")):
            self.ext.append(a)


def image_size(src: str, base: Path) -> tuple[int, int]:
    if src.startswith("data:image/png;base64,"):
        return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).size
    assert "://" not in src and not src.startswith("/"), src  # a relative path next to the page
    return Image.open(base / src).size


def test_run_page_is_self_contained_with_every_section_and_the_verdict(tmp_path):
    root = make_report_run(tmp_path / "run")
    page = write_html(root)
    assert page == root / "report.html"
    text = page.read_text()
    doc = Page(text)
    assert doc.ids >= RUN_SECTIONS
    assert doc.ext == [] and "http://" not in text and "https://" not in text
    assert len(doc.imgs) > 10 and all(min(image_size(s, root)) > 0 for s in doc.imgs)
    # The verdict: the metadata baseline (95% right) explains more than the classifier; underfit and leakage.
    assert "A shortcut explains" in text and "the end-to-end classifier: the metadata-only baseline names" in text
    assert "Likely underfit" in text and "Leakage found: 1 val image(s)" in text
    assert "linear probe at random init" in text and "metadata-only baseline" in text
    # File names of the images shown (confidently named, near duplicates).
    from dsbias.data.manifest import Manifest

    rows = Manifest.load(root / "manifest.jsonl").rows
    assert sum(r["item"] in text for r in rows) >= 6


def test_a_probe_on_a_runs_features_rewrites_the_runs_page_led_by_the_probe(tmp_path):
    root = make_report_run(tmp_path / "mae", classifier=False, leak=False)
    page = write_html(root / "features")
    assert page == root / "report.html"
    text = page.read_text()
    assert "headline: linear probe" in text and "data-question=\"init\"" in text
    assert "per-image val probabilities come from the end-to-end classifier".lower() in text.lower()
    assert "python tools/leakage.py --features" in text  # the section says which command fills it


def test_study_page_links_runs_and_shows_figures_by_relative_path(tmp_path):
    out = make_report_study(tmp_path / "study", n_runs=1)
    page = write_html(out)
    assert page == out / "report.html"
    doc = Page(page.read_text())
    assert {"verdict", "results", "table-combos", "confusion", "figures", "runs", "provenance"} <= doc.ids
    assert doc.imgs and all(min(image_size(s, out)) > 0 for s in doc.imgs)
    runs = [h for h in doc.hrefs if h.startswith("runs/")]
    assert runs and all((out / h).is_file() for h in runs)  # each run's own page was written
    assert "a shortcut baseline names the sources as well as the best model (alpha+beta+gamma: metadata-only" in (
        page.read_text())


def test_tools_report_writes_a_page_and_says_what_is_wrong(tmp_path, capsys):
    root = make_report_run(tmp_path / "run", features=False)
    (root / "report.html").unlink(missing_ok=True)
    assert report_main([str(root)]) == 0
    assert (root / "report.html").is_file() and "KB" in capsys.readouterr().out
    assert report_main([str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no metrics.json, probe_"):
        write_html(tmp_path / "empty")


def test_commands_refresh_the_page_only_in_the_main_process_and_once_there_is_a_result(tmp_path, monkeypatch):
    from dsbias.report.write import refresh

    (tmp_path / "features").mkdir()  # a pretraining run before its first probe: nothing to lead with yet
    assert refresh(tmp_path) is None and not (tmp_path / "report.html").exists()
    root = make_report_run(tmp_path / "run", features=False)
    monkeypatch.setenv("RANK", "1")  # another process of an `accelerate launch`
    assert refresh(root) is None and not (root / "report.html").exists()


def test_a_run_whose_sources_moved_still_gets_its_page_with_the_file_names(tmp_path, caplog):
    root = make_report_run(tmp_path / "run", features=False)
    (root / "config.yaml").write_text((root / "config.yaml").read_text().replace("kind: toy", "kind: folder\n"
                                                                                 "    path: /nowhere"))
    text = write_html(root).read_text()
    assert 'id="images"' in text and "cannot show" in caplog.text
    assert "data:image/png" in text  # the curves still render; the cards carry names only
