"""Progress bars: live on a terminal, a few whole lines in a log file."""

import io

from dsbias.log import LineBar, progress


def test_progress_to_a_file_writes_a_line_per_tenth():
    out = io.StringIO()
    bar = progress(total=960, desc="train", file=out)
    assert isinstance(bar, LineBar)
    for _ in range(960):
        bar.update(1)
    bar.close()
    text = out.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and 10 <= len(lines) <= 13, lines
    assert "960/960" in lines[-1] and all(line.startswith("train") for line in lines)


def test_progress_over_an_iterable_and_a_resumed_total():
    out = io.StringIO()
    assert list(progress(range(50), desc="x", file=out, leave=False)) == list(range(50))
    assert 5 <= len(out.getvalue().splitlines()) <= 12
    out = io.StringIO()
    bar = progress(total=100, initial=90, file=out)
    for _ in range(10):
        bar.update(1)
    bar.close()
    assert len(out.getvalue().splitlines()) <= 12 and "100/100" in out.getvalue().splitlines()[-1]


def test_disabled_progress_writes_nothing():
    out = io.StringIO()
    bar = progress(total=10, file=out, disable=True)
    bar.update(10)
    bar.close()
    assert out.getvalue() == ""
