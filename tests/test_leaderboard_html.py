"""The browsable leaderboard (``leaderboard/index.html``) in a real headless browser.

Chromium (Debian's ``chromium`` package) loads the committed page with a probe script added
(in a copy, never in the page itself); the probe clicks every protocol tab and a sort header
and writes what it saw into the DOM, which ``--dump-dom`` returns. Checked: no script error or
console error, every tab shows its own section with the same method rows as the Markdown
page's main table, clicking a header reorders the rows by that column (descending, then
ascending, "—" last), and a screenshot is taken. Skips, saying why, without Chromium.

The page is also checked without a browser: self-contained (no http(s) resource), and its
tables carry the rows of the Markdown.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "leaderboard" / "index.html"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

PROBE_HEAD = """<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push("error: " + e.message); });
(function () { var orig = console.error; console.error = function () {
  window.__errors.push("console.error: " + Array.prototype.join.call(arguments, " "));
  return orig.apply(console, arguments); }; })();
</script>"""

PROBE_BODY = """<script>
(function () {
  var out = {tabs: {}, sort: null, errors: null};
  var buttons = document.querySelectorAll("nav.tabs button");
  Array.prototype.forEach.call(buttons, function (b) {
    b.click();
    var id = b.dataset.tab;
    var visible = Array.prototype.filter.call(document.querySelectorAll("section.protocol"),
      function (s) { return !s.hidden; }).map(function (s) { return s.id; });
    var table = document.getElementById(id + "-main");
    out.tabs[id] = {
      selected: b.getAttribute("aria-selected"),
      visible: visible,
      rows: table ? Array.prototype.map.call(table.tBodies[0].rows,
        function (r) { return r.dataset.method; }) : null,
      kinds: table ? Array.prototype.map.call(table.tBodies[0].rows,
        function (r) { return r.dataset.kind; }) : null
    };
  });
  var first = buttons[0].dataset.tab;
  buttons[0].click();
  var t = document.getElementById(first + "-main");
  var heads = Array.prototype.map.call(t.tHead.rows[0].cells, function (c) {
    return c.textContent.trim(); });
  var col = heads.indexOf("NDCG@5");
  function state() {
    return Array.prototype.map.call(t.tBodies[0].rows, function (r) {
      return [r.dataset.method, r.cells[col].getAttribute("data-v")]; });
  }
  var before = state();
  var btn = t.tHead.rows[0].cells[col].querySelector("button");
  btn.click();
  var desc = state(), ariaDesc = t.tHead.rows[0].cells[col].getAttribute("aria-sort");
  btn.click();
  var asc = state(), ariaAsc = t.tHead.rows[0].cells[col].getAttribute("aria-sort");
  out.sort = {protocol: first, before: before, desc: desc, asc: asc, ariaDesc: ariaDesc,
              ariaAsc: ariaAsc};
  out.errors = window.__errors;
  var pre = document.createElement("pre");
  pre.id = "probe-result";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


def _browser() -> str | None:
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def _markdown_rows(md: str) -> list[str]:
    """Method names of the first table under '## Results' of a protocol page, in order."""
    section = md.split("## Results", 1)[1]
    rows = []
    for line in section.splitlines()[1:]:
        if line.startswith("## "):
            break
        if line.startswith("|") and not line.startswith("|--"):
            rows.append(line.split("|")[1].strip())
        elif rows and not line.startswith("|"):
            break
    return [r.removesuffix(" †").removesuffix(" ‡") for r in rows[1:]]  # header dropped; marks


def _protocols() -> list[str]:
    from benchmark.report.leaderboard import load_spec

    return list(load_spec()["protocol"])


@pytest.fixture(scope="module")
def page() -> str:
    if not PAGE.is_file():
        pytest.fail(f"{PAGE} missing: python -m benchmark leaderboard --rerun writes it")
    return PAGE.read_text()


def test_page_is_self_contained_and_has_every_protocol(page):
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no CDN, no network
    assert "<link" not in page and "@import" not in page
    for name in _protocols():
        assert f'<section class="protocol" id="{name}"' in page
        assert f'href="{name}.md"' in page
        md = (REPO / "leaderboard" / f"{name}.md").read_text()
        for fig in re.findall(r"\]\((figures/[^)]+\.png)\)", md):
            assert f'href="{fig}"' in page  # figures linked, not embedded
    assert "data:image" not in page


@pytest.fixture(scope="module")
def probed(page, tmp_path_factory):
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium found (apt-get install -y chromium): the HTML leaderboard is "
                    "not tested in a browser")
    d = tmp_path_factory.mktemp("html")
    probe = page.replace("<head>", "<head>\n" + PROBE_HEAD, 1).replace(
        "</body>", PROBE_BODY + "\n</body>", 1)
    (d / "index.html").write_text(probe)
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={d / 'profile'}",
             "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([*flags, "--virtual-time-budget=5000", "--dump-dom",
                          (d / "index.html").as_uri()], capture_output=True, text=True,
                         timeout=120)
    shot = d / "leaderboard.png"
    subprocess.run([*flags, "--window-size=1400,1600", f"--screenshot={shot}",
                    PAGE.as_uri()], capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="probe-result">(.*?)</pre>', dom.stdout, re.S)
    assert m, f"probe did not run; chromium stderr: {dom.stderr[-2000:]}"
    import html

    return json.loads(html.unescape(m.group(1))), dom.stderr, shot


def test_no_script_or_console_errors(probed):
    result, stderr, _ = probed
    assert result["errors"] == []
    console = [ln for ln in stderr.splitlines() if ":CONSOLE" in ln and "probe-result" not in ln]
    assert console == []


def test_every_protocol_tab_shows_the_rows_of_its_markdown_table(probed):
    result, _, _ = probed
    assert list(result["tabs"]) == _protocols()
    for name, tab in result["tabs"].items():
        assert tab["selected"] == "true"
        assert tab["visible"] == [name]  # one section at a time
        md_rows = _markdown_rows((REPO / "leaderboard" / f"{name}.md").read_text())
        assert tab["rows"] == md_rows, name
        assert len(md_rows) >= 3
        assert set(tab["kinds"]) <= {"computed", "submitted", "needs"}


def test_sorting_reorders_by_the_clicked_column(probed):
    result, _, _ = probed
    s = result["sort"]

    def values(state):
        return [float(v) for _, v in state if v not in ("", None)]

    assert s["ariaDesc"] == "descending" and s["ariaAsc"] == "ascending"
    d, a = values(s["desc"]), values(s["asc"])
    assert d == sorted(d, reverse=True) and a == sorted(a)
    assert [m for m, _ in s["desc"]] != [m for m, _ in s["before"]]  # the order changed
    n = len(d)  # rows without a value ("—", not run) stay last both ways
    assert all(v == "" for _, v in s["desc"][n:]) and all(v == "" for _, v in s["asc"][n:])
    assert sorted(s["desc"]) == sorted(s["before"])  # same rows


def test_screenshot_is_taken(probed):
    _, _, shot = probed
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a rendered page, not blank
