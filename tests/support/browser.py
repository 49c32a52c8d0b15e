"""Headless Chromium for the pages' tests: a screenshot or the DOM of a page, and a pixel check
that its charts' bars are painted."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from adapters.files.report_html import MEASURES
from support.reports import svg

LEGEND_KEY_AREA = 12 * 12  # px of one legend key, drawn once in each chart


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(
        "headless Chromium is not installed (neither `chromium` nor `chromium-browser` is on PATH), "
        "so the report page was not checked in a browser: install it with `apt-get install chromium`"
    )


def run_chromium(binary: str, profile: Path, *args: str, timeout: float = 120) -> str:
    """Chromium headless with root-safe flags; its stdout. A timeout kills its process group."""
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--window-size=1280,2000",
        f"--user-data-dir={profile}",
        *args,
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium {' '.join(args)} did not finish within {timeout} s")
    assert proc.returncode == 0, f"chromium exited with {proc.returncode}:\n{err[-3000:]}"
    return out


def bar_interior(html: str, measure: str) -> int:
    """Pixels surely inside the bars of one measure, in both charts.

    An edge at a fractional position is blended with the background, so of an extent of L px at
    least floor(L) - 1 pixels are solid; one more row goes to the zero axis drawn over the bars.
    """
    total = 0
    for chart_id in ("chart-fiscal-year", "chart-city"):
        for rect in svg(html, chart_id).iter("rect"):
            if f"bar-{measure.replace(' ', '-')}" in rect.get("class", "").split():
                width, height = float(rect.get("width", "0")), float(rect.get("height", "0"))
                total += max(0, int(width) - 1) * max(0, int(height) - 2)
    return total


def assert_bars_painted(screenshot: Path, html: str, measures: list[str]) -> None:
    """Each measure's colour covers at least its bars' solid interior in the screenshot, which
    is more than its legend keys alone could."""
    from PIL import Image

    with Image.open(screenshot) as image:
        assert image.size == (1280, 2000)
        colours = {rgb: n for n, rgb in image.convert("RGB").getcolors(1280 * 2000) or []}
    for _, measure, colour in MEASURES:
        if measure not in measures:
            continue
        rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
        solid = bar_interior(html, measure)
        assert solid > 2 * LEGEND_KEY_AREA, f"the {measure} bars are too small to test"
        painted = colours.get(rgb, 0)
        assert painted >= solid, f"{measure} ({colour}): {painted} px painted, bars need {solid}"
