#!/usr/bin/env python3
"""Check what headless Chromium saw when it opened a page written by `ntm report`.

Inputs are the files that scripts/report-browser-test.sh collects: the DOM after load
(`--dump-dom`), Chromium's log (`--enable-logging=stderr`), its net log (`--log-net-log`)
and a screenshot. Each check prints `ok:` or `FAILED:`, then a `N passed, M failed` line;
the exit code is 1 when any check failed. Uses the Python standard library only.
"""

import argparse
import json
import re
import struct
import sys
import zlib
from html.parser import HTMLParser


class Node:
    """One element of the parsed DOM."""

    def __init__(self, tag, attrs, parent):
        self.tag = tag
        self.attrs = dict(attrs)
        self.parent = parent
        self.children = []
        self.text = ""

    def classes(self):
        return self.attrs.get("class", "").split()

    def descendants(self):
        for child in self.children:
            yield child
            yield from child.descendants()


class TreeBuilder(HTMLParser):
    """Builds a tree of `Node`s; HTML void elements never get children."""

    VOID = {"meta", "link", "br", "img", "input", "hr", "area", "base", "col", "source", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", [], None)
        self.current = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.current)
        self.current.children.append(node)
        if tag not in self.VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, attrs, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.text += data


class Checks:
    """Collects check results and prints them as they come."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, condition, message):
        if condition:
            self.passed += 1
            print(f"ok: {message}")
        else:
            self.failed += 1
            print(f"FAILED: {message}")


def console_messages(log_text):
    """Returns the page's console messages from Chromium's log, errors and logs alike."""
    return [line for line in log_text.splitlines() if ":CONSOLE" in line]


def page_requests(netlog):
    """Returns the URLs that the page itself requested over the network.

    Chromium's own background requests carry the initiator "not an origin"; requests made by
    a page opened from a file carry a network isolation key of file://.
    """
    types = {value: name for name, value in netlog["constants"]["logEventTypes"].items()}
    urls = []
    for event in netlog.get("events", []):
        if types.get(event.get("type")) != "URL_REQUEST_START_JOB":
            continue
        params = event.get("params", {})
        key = str(params.get("network_isolation_key", ""))
        initiator = str(params.get("initiator") or "")
        if "file://" in key or initiator not in ("not an origin", ""):
            urls.append(params.get("url", "?"))
    return urls


def png_summary(path):
    """Returns (width, height, distinct byte values of the pixel data) of a PNG file."""
    with open(path, "rb") as file:
        data = file.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG file")
    offset = 8
    width = height = 0
    compressed = b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            compressed += body
        offset += 12 + length
    pixels = zlib.decompress(compressed)
    return width, height, len(set(pixels))


def charts_by_id(root):
    return {
        node.attrs.get("id", ""): node
        for node in root.descendants()
        if node.tag == "svg" and "chart" in node.classes()
    }


def check_dom(checks, dom_text, topics, top_n):
    builder = TreeBuilder()
    builder.feed(dom_text)
    root = builder.root
    html = next((n for n in root.descendants() if n.tag == "html"), None)
    checks.check(html is not None, "the DOM has an <html> element")
    if html is None:
        return
    checks.check(
        "interactive" in html.classes(),
        "the page's script ran (html.interactive is set)",
    )
    checks.check("NaN" not in dom_text, "no NaN anywhere in the rendered DOM")

    charts = charts_by_id(root)
    expected = 1 + topics + 1 + 1
    checks.check(
        len(charts) == expected,
        f"{expected} charts (loss, {topics} word charts, prevalence, map): found {len(charts)}",
    )
    for chart_id, chart in sorted(charts.items()):
        first = [c.tag for c in chart.children[:2]]
        checks.check(first == ["title", "desc"], f"chart {chart_id} starts with <title> and <desc>")

    loss = charts.get("loss-chart")
    if loss is not None:
        for series in ("train", "validation"):
            groups = [n for n in loss.descendants() if n.tag == "g" and series in n.classes()]
            lines = sum(1 for g in groups for n in g.descendants() if n.tag == "polyline")
            points = sum(1 for g in groups for n in g.descendants() if n.tag == "circle")
            checks.check(lines >= 1 and points >= 2, f"loss chart draws the {series} series ({points} points)")
    else:
        checks.check(False, "the loss chart is drawn")

    for k in range(topics):
        chart = charts.get(f"topic-{k}-words")
        bars = 0 if chart is None else sum(
            1 for n in chart.descendants() if n.tag == "rect" and "bar" in n.classes()
        )
        checks.check(bars == top_n, f"topic {k} has {top_n} word bars: found {bars}")

    prevalence = charts.get("prevalence-chart")
    bars = 0 if prevalence is None else sum(
        1 for n in prevalence.descendants() if n.tag == "rect" and "bar" in n.classes()
    )
    checks.check(bars == topics, f"prevalence chart has {topics} bars: found {bars}")

    topic_map = charts.get("topic-map")
    circles = 0 if topic_map is None else sum(1 for n in topic_map.descendants() if n.tag == "circle")
    checks.check(circles == topics, f"topic map has {topics} circles: found {circles}")

    rows = [n for n in root.descendants() if n.tag == "tr" and "data-topic" in n.attrs]
    checks.check(len(rows) == topics, f"metrics table has {topics} topic rows: found {len(rows)}")

    numbers = re.compile(r"^-?\d+(\.\d+)?$")
    bad = [
        (node.tag, name, node.attrs[name])
        for chart in charts.values()
        for node in chart.descendants()
        for name in ("x", "y", "x1", "x2", "y1", "y2", "cx", "cy", "r", "width", "height")
        if name in node.attrs and not numbers.match(node.attrs[name] or "")
    ]
    checks.check(not bad, f"every chart coordinate is a finite number{'' if not bad else ': ' + str(bad[:3])}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dom", required=True, help="DOM dumped after load")
    parser.add_argument("--log", required=True, help="Chromium's stderr log")
    parser.add_argument("--netlog", required=True, help="Chromium's net log (JSON)")
    parser.add_argument("--screenshot", help="screenshot PNG; skipped when absent")
    parser.add_argument("--topics", type=int, required=True, help="number of topics of the model")
    parser.add_argument("--top-n", type=int, default=10, help="words per topic in the report")
    args = parser.parse_args()

    checks = Checks()
    with open(args.log, encoding="utf-8", errors="replace") as file:
        messages = console_messages(file.read())
    checks.check(not messages, "no console messages" + "".join(f"\n    {m}" for m in messages))

    with open(args.netlog, encoding="utf-8") as file:
        netlog = json.load(file)
    requests = page_requests(netlog)
    checks.check(not requests, "the page makes no network requests" + "".join(f"\n    {u}" for u in requests))

    with open(args.dom, encoding="utf-8") as file:
        check_dom(checks, file.read(), args.topics, args.top_n)

    if args.screenshot:
        try:
            width, height, distinct = png_summary(args.screenshot)
            checks.check(width > 0 and height > 0, f"screenshot is a {width}×{height} PNG")
            checks.check(distinct > 16, f"screenshot is not blank ({distinct} distinct byte values)")
        except (OSError, ValueError, zlib.error) as error:
            checks.check(False, f"screenshot is readable: {error}")

    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
