"""The one page writer of runs and studies: a self-contained ``report.html``.

No CDN, no network, no framework: the style sheet and a few lines of plain JavaScript (click a table header to
sort) are inline, images are embedded as base64 PNG (run pages) or referenced by relative path next to the page
(a study's ``figures/``), so the file opens from disk in any browser. Every string that comes from a run (names,
file names, commands) is escaped.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsbias.report.verdict import Sentence
from dsbias.runs import write_text

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1100px;padding:16px 24px;
color:#1b1f24;background:#fff}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;
padding-bottom:4px}.sub{color:#57606a;margin:0 0 12px}
#verdict{border:1px solid #d0d7de;border-radius:6px;padding:8px 14px;background:#f6f8fa}
#verdict li{margin:4px 0;list-style:none}#verdict li::before{content:"\\25CF";margin-right:8px}
li.good::before{color:#1a7f37}li.null::before{color:#8c959f}li.warn::before{color:#bf8700}li.info::before{color:#0969da}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}th,td{border:1px solid #d0d7de;padding:3px 7px;
text-align:right}th{background:#f6f8fa;cursor:pointer;white-space:nowrap}td:first-child,th:first-child{text-align:left}
td.l{text-align:left}
.wide{overflow-x:auto}.wide td{white-space:nowrap}table.conf td{min-width:42px;text-align:center}.muted{color:#57606a}
.src{display:flex;flex-wrap:wrap;gap:28px}
.grid{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #d0d7de;border-radius:4px;padding:4px;width:110px;
font-size:11px;word-break:break-all}.card img{width:100%;image-rendering:pixelated;display:block}
.pair{display:inline-flex;gap:6px;margin:0 8px 8px 0;align-items:flex-start;border:1px solid #d0d7de;
border-radius:4px;padding:6px}
img.fig{max-width:100%;height:auto}code{background:#f6f8fa;padding:1px 4px;border-radius:3px;font-size:12px}
.ok{color:#1a7f37}.bad{color:#cf222e}footer{margin-top:30px;font-size:12px;color:#57606a}
"""

# Click a header: sort its table by that column (numbers by value, text alphabetically); click again: reverse.
SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function(th){th.addEventListener('click',function(){
var t=th.closest('table'),b=t.tBodies[0],i=Array.prototype.indexOf.call(th.parentNode.children,th);
var asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
var key=function(r){var s=r.children[i].textContent.trim(),v=parseFloat(s.replace(/[^0-9eE.+-]/g,''));
return isNaN(v)?s:v;};
Array.prototype.slice.call(b.rows).sort(function(x,y){var a=key(x),c=key(y);
var o=(typeof a==='number'&&typeof c==='number')?a-c:String(a).localeCompare(String(c));return asc?o:-o;})
.forEach(function(r){b.appendChild(r);});});});
"""


class Raw(str):
    """HTML that is already safe (built here); every other string is escaped."""


def esc(x: Any) -> str:
    """Escaped text of ``x`` (a :class:`Raw` string passes through)."""
    return x if isinstance(x, Raw) else html.escape("" if x is None else str(x))


@dataclass
class Section:
    """One ``<section>`` of a page: an id (the tests look for it), a title and its body."""

    id: str
    title: str
    body: list[str] = field(default_factory=list)

    def add(self, *parts: str) -> Section:
        self.body.extend(parts)
        return self


def p(text: Any, cls: str = "") -> Raw:
    return Raw(f"<p{f' class={cls!r}' if cls else ''}>{esc(text)}</p>")


def code(text: Any) -> Raw:
    return Raw(f"<code>{esc(text)}</code>")


def table(head: Sequence[Any], rows: Sequence[Sequence[Any]], id: str = "", cls: str = "sortable") -> Raw:
    """A table: header cells, then rows of cells (escaped unless :class:`Raw`)."""
    ident = f' id="{esc(id)}"' if id else ""
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return Raw(f'<table class="{cls}"{ident}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>')


def img_png(data: bytes, alt: str, cls: str = "fig") -> Raw:
    """An ``<img>`` with the PNG embedded as a data URI."""
    return Raw(f'<img class="{cls}" alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">')


def img_file(rel: str | Path, alt: str) -> Raw:
    """An ``<img>`` of a file next to the page (relative path)."""
    return Raw(f'<img class="fig" alt="{esc(alt)}" src="{esc(Path(rel).as_posix())}">')


def link(href: str | Path, text: Any) -> Raw:
    return Raw(f'<a href="{esc(Path(href).as_posix())}">{esc(text)}</a>')


def heat(x: float | None) -> str:
    """A cell style: white at 0, blue at 1 (row-normalised confusion)."""
    if x is None:
        return ""
    light = 97 - 55 * max(0.0, min(1.0, x))
    return f' style="background:hsl(212,80%,{light:.0f}%);color:{"#fff" if light < 60 else "#1b1f24"}"'


def confusion_table(res: dict[str, Any], id: str = "confusion") -> Raw:
    """The confusion matrix as a heat-coloured table (row = true source, counts and row %), recall per source."""
    names, conf = res["sources"], res["confusion"]
    head = "".join(f"<th>{esc(n)}</th>" for n in names)
    rows = []
    for name, row in zip(names, conf):
        total = max(sum(row), 1)
        cells = "".join(f'<td{heat(c / total)} title="{c} of {total}">{c}<br><span>{100 * c / total:.0f}%</span></td>'
                        for c in row)
        rec = res["per_source"].get(name)
        rows.append(f"<tr><th>{esc(name)}</th>{cells}<td>{'-' if rec is None else f'{100 * rec:.1f}%'}</td>"
                    f"<td>{sum(row)}</td></tr>")
    return Raw(f'<table class="conf" id="{esc(id)}"><thead><tr><th>true \\ predicted</th>{head}<th>recall</th>'
               f'<th>val images</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def verdict_list(sentences: list[Sentence]) -> Raw:
    items = "".join(f'<li class="{s.tone}" data-question="{s.question}">{esc(s.text)}</li>' for s in sentences)
    return Raw(f'<section id="verdict"><h2>Verdict</h2><ul>{items}</ul></section>')


def provenance_section(prov: dict[str, Any] | None, extra: list[tuple[str, Any]] = ()) -> Section:
    """Command, git sha, versions, machine: what made the numbers on the page."""
    sec = Section("provenance", "Provenance")
    if not prov:
        return sec.add(p("No provenance.json in this directory.", "muted"))
    cmd = prov.get("command")
    git = prov.get("git") or {}
    rows = [("command", " ".join(cmd) if isinstance(cmd, list) else cmd),
            ("git sha", f"{git.get('sha') or '-'}{' (uncommitted changes)' if git.get('dirty') else ''}"),
            ("versions", ", ".join(f"{k} {v}" for k, v in (prov.get("versions") or {}).items())),
            ("python", prov.get("python")), ("machine", f"{prov.get('host', '-')} ({prov.get('platform', '-')})"),
            ("time", prov.get("time")), *extra]
    return sec.add(table(["", ""], [(k, Raw(f'<span class="l">{esc(v)}</span>')) for k, v in rows], cls="prov"))


def write_page(path: Path, title: str, subtitle: str, verdict: list[Sentence], sections: list[Section],
               prov: dict[str, Any] | None, extra: list[tuple[str, Any]] = ()) -> Path:
    """Write the page: title, verdict, the sections (with a table of contents), provenance at the bottom."""
    sections = [*sections, provenance_section(prov, extra)]
    toc = " · ".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{esc(s.id)}"><h2>{esc(s.title)}</h2>{"".join(s.body)}</section>' for s in sections)
    doc = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
           f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style></head><body>'
           f'<h1>{esc(title)}</h1><p class="sub">{esc(subtitle)}</p>{verdict_list(verdict)}<nav class="muted">{toc}'
           f'</nav>{body}<footer>Written by dsbias ({esc(path.name)}); open from disk, no network '
           f'needed.</footer><script>{SORT_JS}</script></body></html>\n')
    write_text(path, doc)
    return path
