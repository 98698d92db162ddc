"""Pages of protocols measured on this machine (``Protocol.measured_here``: minizoo).

Their models are trained and their ground truth measured here, and training is not
bit-identical across CPUs: a 1e-7 difference can flip a ranking, so the digits, the best method
and the significance marks of such a page may differ from host to host. ``leaderboard --check``
therefore compares their *structure* (:func:`md_signature`, :func:`html_signature`: headings,
table headers, the set of row labels of every table) and checks the properties that make the
zoo a ranking task (recorded by the rerun in ``run.json``, :func:`property_failures`), never
their numbers. Everything else on the leaderboard is still compared byte for byte.
"""

from __future__ import annotations

import platform
import re

#: the line of a measured page that names the host (dropped from its signature)
HOST_PREFIX = "- Host: "
#: a block of any page measured on the machine that rendered it (wall times): compared by the
#: labels of its table rows only
HOST_BEGIN = "<!-- measured on this machine: compared by row labels only -->"
HOST_END = "<!-- end of measurements -->"
_MARKS = re.compile(r"\*\*|[▲▼=†]|\s+\(submitted\)")


def host() -> str:
    """The machine a measured protocol was trained and measured on (for provenance)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                        None)
        cpu = name or cpu
    except OSError:
        pass
    import os

    return f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, " \
           f"Python {platform.python_version()}"


def _label(cell: str) -> str:
    return _MARKS.sub("", cell).strip()


def md_signature(text: str) -> list[str]:
    """Headings in order; per table its header and the sorted set of its row labels."""
    out: list[str] = []
    table: list[str] = []

    def flush() -> None:
        if table:
            out.append("table " + table[0].strip())
            out.extend(sorted({_label(r.strip("|").split("|")[0]) for r in table[2:]}))
            table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("#"):
            out.append(line.strip())
    flush()
    return out


def _section(text: str, protocol: str) -> tuple[int, int] | None:
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines)
                  if ln.startswith("<section") and f'id="{protocol}"' in ln), None)
    if start is None:
        return None
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("</section>"))
    return start, end


def html_signature(text: str, protocols) -> list[str]:
    """The page with each measured protocol's section reduced to its headings and the sorted
    set of its row labels (``data-method``), and its overview row to its name."""
    lines = text.splitlines()
    for p in protocols:
        span = _section("\n".join(lines), p)
        if span:
            a, b = span
            body = lines[a:b + 1]
            heads = [ln for ln in body if re.match(r"\s*<h[1-4]", ln)]
            methods = sorted(set(re.findall(r'data-method="([^"]*)"', "\n".join(body))))
            lines = lines[:a] + [f"<section {p}>", *heads, *methods, "</section>"] + lines[b + 1:]
        out, skip = [], False
        for ln in lines:  # the overview row of the protocol: its name only
            if ln.startswith("<tr") and f'data-method="{p}"' in ln:
                out.append(f"<tr overview {p}>")
                skip = True
            elif skip:
                skip = not ln.startswith("</tr>")
            else:
                out.append(ln)
        lines = out
    return lines


def readme_signature(text: str, protocols) -> list[str]:
    links = [f"[{p}]({p}.md)" for p in protocols]
    return [ln.split("|")[1].strip() if any(k in ln for k in links) else ln
            for ln in text.splitlines()]


def same(name: str, committed: str, fresh: str, protocols) -> bool:
    """Does a committed file match its regenerated version, measured protocols compared by
    structure (this function's module docstring)?"""
    protocols = tuple(protocols)
    stem = name.removesuffix(".md")
    if name.endswith(".md") and stem in protocols:
        return md_signature(committed) == md_signature(fresh)
    if name == "README.md":
        return readme_signature(committed, protocols) == readme_signature(fresh, protocols)
    if name == "index.html":
        return html_signature(committed, protocols) == html_signature(fresh, protocols)
    return committed == fresh


def _host_blocks_masked(text: str) -> list[str]:
    out, inside = [], False
    for line in text.splitlines():
        if line == HOST_BEGIN:
            inside = True
            out.append(line)
        elif line == HOST_END:
            inside = False
            out.append(line)
        elif inside:
            if line.startswith("|") and not set(line) <= set("|-: "):
                out.append(_label(line.strip("|").split("|")[0]))
        else:
            out.append(line)
    return out


def same_but_host_blocks(committed: str, fresh: str) -> bool:
    """Equal once the host-dependent blocks (:data:`HOST_BEGIN`) are reduced to row labels."""
    return _host_blocks_masked(committed) == _host_blocks_masked(fresh)


def is_measured_figure(name: str, protocols) -> bool:
    base = name.rsplit("/", 1)[-1]
    return any(base.startswith(f"{p}-") for p in protocols)


def property_failures(run_meta: dict) -> list[str]:
    """What the rerun recorded as failing the ranking-task properties (``run.json``)."""
    out = []
    for meta in run_meta.values():
        out += (meta.get("measured_here") or {}).get("properties", {}).get("failures", [])
    return sorted(set(out))
