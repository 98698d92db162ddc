"""The browsable leaderboard: one static ``leaderboard/index.html`` beside the Markdown.

No server, no network at view time: one file with its CSS and script inline, no external
fonts, scripts or stylesheets. One tab per protocol (``#<protocol>`` in the address selects it;
without JavaScript every section is shown one after the other), sortable columns (click a
header; numbers sort by value, "—" always last), a *kind* column telling computed, submitted
and not-run rows apart, the reported numbers of the literature in their own table, the
coverage, the provenance (protocol hash, seeds, ground-truth sources, metric settings, method
classes and parameter hashes, submissions, feature-pack origins) and the figures, linked (PNG
bytes are not stable across machines, so they are not embedded).

Rendered from plain data (:func:`render_page`, built by
:func:`benchmark.report.leaderboard.render_all` from the same tables as the Markdown), and as
deterministic as the Markdown: no dates, paths or commits, so CI regenerates and checks it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

KIND_LABEL = {"computed": "computed", "submitted": "submitted", "needs": "not run",
              "reported": "reported"}

CSS = """
:root { --fg:#1b1f23; --muted:#57606a; --line:#d0d7de; --bg:#fff; --alt:#f6f8fa;
  --accent:#0969da; --sub:#8250df; --rep:#9a6700; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  background: var(--bg); margin: 0 auto; max-width: 1400px; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; }
h3 { font-size: 15px; margin: 20px 0 6px; }
p.lead, .muted { color: var(--muted); }
nav.tabs { display: flex; gap: 4px; flex-wrap: wrap; border-bottom: 1px solid var(--line);
  margin: 16px 0 0; position: sticky; top: 0; background: var(--bg); padding-top: 6px; z-index: 2; }
nav.tabs button { font: inherit; border: 1px solid var(--line); border-bottom: none;
  background: var(--alt); padding: 6px 14px; border-radius: 6px 6px 0 0; cursor: pointer; }
nav.tabs button[aria-selected="true"] { background: var(--bg); font-weight: 600;
  border-color: var(--accent); color: var(--accent); }
section.protocol { padding-top: 4px; scroll-margin-top: 48px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0 10px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
thead th { background: var(--alt); position: relative; }
th button.sort { font: inherit; font-weight: 600; background: none; border: none; padding: 0;
  cursor: pointer; color: inherit; }
th[aria-sort="ascending"] button.sort::after { content: " \\25B2"; }
th[aria-sort="descending"] button.sort::after { content: " \\25BC"; }
tbody tr:nth-child(even) { background: var(--alt); }
tr.kind-submitted td:first-child { border-left: 4px solid var(--sub); }
tr.kind-needs { color: var(--muted); }
tr.kind-reported td:first-child { border-left: 4px solid var(--rep); }
tr.status-best td:first-child { font-weight: 700; }
.badge { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 10px;
  border: 1px solid currentColor; }
.badge.computed { color: var(--accent); } .badge.submitted { color: var(--sub); }
.badge.needs { color: var(--muted); } .badge.reported { color: var(--rep); }
dl.prov { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 6px 0; }
dl.prov dt { color: var(--muted); } dl.prov dd { margin: 0; }
code { font-size: 12px; background: var(--alt); padding: 0 3px; border-radius: 3px; }
ul.figs { padding-left: 18px; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
"""

SCRIPT = """
(function () {
  "use strict";
  var tabs = Array.prototype.slice.call(document.querySelectorAll("nav.tabs button"));
  var sections = Array.prototype.slice.call(document.querySelectorAll("section.protocol"));
  function show(id) {
    var found = sections.some(function (s) { return s.id === id; });
    if (!found && sections.length) { id = sections[0].id; }
    sections.forEach(function (s) { s.hidden = s.id !== id; });
    tabs.forEach(function (b) { b.setAttribute("aria-selected", String(b.dataset.tab === id)); });
    return id;
  }
  tabs.forEach(function (b) {
    b.addEventListener("click", function () {
      var id = show(b.dataset.tab);
      try { history.replaceState(null, "", "#" + id); } catch (e) { /* file: URLs */ }
    });
  });
  if (tabs.length) { show(decodeURIComponent(location.hash.slice(1))); }
  window.addEventListener("hashchange", function () {
    show(decodeURIComponent(location.hash.slice(1)));
  });

  function key(cell) {
    var v = cell.getAttribute("data-v");
    if (v === null) { return { num: false, text: cell.textContent.trim().toLowerCase() }; }
    if (v === "") { return { missing: true }; }
    return { num: true, value: parseFloat(v) };
  }
  function sortTable(table, col, dir) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var indexed = rows.map(function (r, i) { return { row: r, i: i, k: key(r.cells[col]) }; });
    indexed.sort(function (a, b) {
      if (a.k.missing || b.k.missing) {
        if (a.k.missing && b.k.missing) { return a.i - b.i; }
        return a.k.missing ? 1 : -1;  // missing values last, either direction
      }
      var c = a.k.num && b.k.num ? a.k.value - b.k.value
        : (a.k.text < b.k.text ? -1 : a.k.text > b.k.text ? 1 : 0);
      return c !== 0 ? dir * c : a.i - b.i;
    });
    indexed.forEach(function (x) { body.appendChild(x.row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, j) {
      if (j === col) { th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending"); }
      else { th.removeAttribute("aria-sort"); }
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      var b = th.querySelector("button.sort");
      if (!b) { return; }
      b.addEventListener("click", function () {
        var now = th.getAttribute("aria-sort");
        var numeric = th.getAttribute("data-type") === "num";
        var dir = now === null ? (numeric ? -1 : 1) : (now === "ascending" ? -1 : 1);
        sortTable(table, col, dir);
      });
    });
  });
})();
"""


def _e(x: Any) -> str:
    return escape(str(x), quote=True)


def _num(v) -> str:
    if v is None:
        return ""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return ""
    return "" if f != f or f in (float("inf"), float("-inf")) else f"{round(f, 6) + 0.0:.6f}"


def _sortable(table: Mapping[str, Any], tid: str) -> list[str]:
    """A ``<table class="sortable">``: columns are dicts (label, type "num"/"text")."""
    cols = table["columns"]
    out = [f'<div class="scroll"><table class="sortable" id="{_e(tid)}">', "<thead><tr>"]
    for c in cols:
        typ = c.get("type", "text")
        cls = ' class="text"' if typ == "text" else ""
        out.append(f'<th scope="col" data-type="{typ}"{cls}><button class="sort" type="button">'
                   f'{_e(c["label"])}</button></th>')
    out.append("</tr></thead><tbody>")
    for r in table["rows"]:
        kind, status = r.get("kind", "computed"), r.get("status", "")
        out.append(f'<tr class="kind-{_e(kind)} status-{_e(status)}" data-method="{_e(r["method"])}"'
                   f' data-kind="{_e(kind)}">')
        for c, cell in zip(cols, r["cells"], strict=True):
            if c.get("type") == "num":
                text, value = cell
                out.append(f'<td data-v="{_num(value)}">{_e(text)}</td>')
            elif c.get("badge"):
                out.append(f'<td class="text"><span class="badge {_e(cell)}">'
                           f'{_e(KIND_LABEL.get(cell, cell))}</span></td>')
            elif c.get("link") and isinstance(cell, str) and cell.startswith(("http://", "https://")):
                out.append(f'<td class="text"><a href="{_e(cell)}" rel="noopener">{_e(cell)}</a></td>')
            else:
                out.append(f'<td class="text">{_e(cell)}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return out


def _protocol_section(p: Mapping[str, Any]) -> list[str]:
    name = p["name"]
    out = [f'<section class="protocol" id="{_e(name)}" data-protocol="{_e(name)}">',
           f"<h2>{_e(name)}</h2>", f'<p class="lead">{_e(p["description"])}. Leave-one-dataset-'
           "out: every target is held out once; a method never sees the target's ground truth. "
           f'Markdown: <a href="{_e(name)}.md">{_e(name)}.md</a>.</p>']
    if p.get("synthetic_note"):
        out.append(f"<p><strong>{_e(p['synthetic_note'])}</strong></p>")
    for i, t in enumerate(p["tables"]):
        out.append(f"<h3>{_e(t['title'])}</h3>")
        if t.get("note"):
            out.append(f'<p class="muted">{_e(t["note"])}</p>')
        out += _sortable(t, f"{name}-{'main' if i == 0 else t.get('id', i)}")
    if p.get("reported"):
        rep = p["reported"]
        out += ["<h3>Reported in the literature (not computed here)</h3>",
                f'<p class="muted">Source: {_e(rep["source"])}.</p>']
        out += _sortable(rep, f"{name}-reported")
    out.append("<h3>Coverage</h3>")
    out.append(f'<p class="muted">{_e(p["coverage_note"])}</p>')
    out += _sortable({"columns": [{"label": "target"}, {"label": "candidates / zoo"}],
                      "rows": [{"method": t, "kind": "computed", "cells": [t, c]}
                               for t, c in p["coverage"]]}, f"{name}-coverage")
    out.append("<h3>Provenance</h3><dl class=\"prov\">")
    for k, v in p["provenance"]:
        out.append(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>")
    out.append("</dl>")
    if p.get("methods"):
        out += _sortable(p["methods"], f"{name}-methods")
    if p.get("submitted"):
        out.append("<h3>Submitted predictions</h3>")
        out.append('<p class="muted">Computed elsewhere, scored by this code (python -m '
                   "benchmark score); the protocol hash was checked.</p>")
        out += _sortable(p["submitted"], f"{name}-submitted")
    if p.get("notes"):
        out.append("<h3>Notes</h3><ul>" + "".join(f"<li>{_e(n)}</li>" for n in p["notes"])
                   + "</ul>")
    if p.get("figures"):
        out.append("<h3>Figures</h3><ul class=\"figs\">")
        out += [f'<li><a href="{_e(f)}">{_e(f)}</a></li>' for f in p["figures"]]
        out.append("</ul>")
    out.append("</section>")
    return out


def render_page(protocols: Sequence[Mapping[str, Any]], overview: Mapping[str, Any],
                version: str) -> str:
    """The whole page as text (deterministic for the same input)."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>vlmbench leaderboard</title>",
           f"<style>{CSS}</style>", "</head>", "<body>",
           "<header><h1>vlmbench leaderboard</h1>",
           '<p class="lead">Methods that choose a CLIP-family vision-language model for a new '
           "task without evaluating every model, ranked leave-one-dataset-out on published "
           "zero-shot accuracies. Generated by <code>python -m benchmark leaderboard "
           f"--rerun</code> (vlmbench {_e(version)}) beside the Markdown pages; do not edit by "
           "hand. Rows: <span class=\"badge computed\">computed</span> here, "
           '<span class="badge submitted">submitted</span> (computed elsewhere, scored here), '
           '<span class="badge needs">not run</span> (features missing), '
           '<span class="badge reported">reported</span> (published numbers, not computed). '
           "Click a column header to sort.</p></header>"]
    out += _sortable(overview, "overview")
    out.append('<nav class="tabs" role="tablist">')
    for p in protocols:
        out.append(f'<button type="button" role="tab" data-tab="{_e(p["name"])}" '
                   f'aria-selected="false">{_e(p["name"])}</button>')
    out.append("</nav>")
    for p in protocols:
        out += _protocol_section(p)
    out.append('<footer>Static page: no server, no network. Figures are linked PNGs under '
               "<code>figures/</code>. Submit predictions: see the README's \"Submitting\" "
               "section.</footer>")
    out += [f"<script>{SCRIPT}</script>", "</body>", "</html>", ""]
    return "\n".join(out)
