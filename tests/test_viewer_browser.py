"""The viewer in a real browser: headless Chromium drags the azimuth slider, the picture changes.

Needs pip ``playwright`` and Debian's ``chromium`` (``apt-get install chromium``; the test never
downloads a browser). Leaves a screenshot in ``test-artifacts/viewer.png``.
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import pytest  # noqa: E402

pytest.importorskip("gradio", reason="viewer extra not installed: pip install 'neuralfields[viewer]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed: pip install playwright")

from conftest import viewer_server  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
TIMEOUT_MS = 45_000  # a render on two busy cores can take several seconds


@pytest.fixture(scope="module")
def page_url(tiny_run, tmp_path_factory):
    if not Path(CHROMIUM).is_file():
        pytest.skip("chromium not installed (apt-get install chromium)")
    from viewer import ViewerConfig

    # Small views with a preview pass, so the page shows the coarse-then-fine refinement quickly.
    config = ViewerConfig(max_resolution=128, default_resolution=64, preview_side=16,
                          output_dir=str(tmp_path_factory.mktemp("vb")), threads=1)
    with viewer_server(tiny_run, config) as url:
        yield url


def test_dragging_azimuth_changes_the_view(page_url):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            hosts = set()
            page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc)
                    if urlsplit(request.url).scheme in ("http", "https", "ws", "wss") else None)
            page.goto(page_url)
            image = page.locator("#view-image img")
            status = page.locator("#view-status")
            # Opening the page loads the run and renders the first view.
            image.wait_for(state="visible")
            page.wait_for_function("() => document.querySelector('#view-status')?.innerText.startsWith('rgb 64x64')")
            before_src = image.get_attribute("src")
            before = page.request.get(before_src).body()

            slider = page.locator("#azimuth input[type=range]")
            box = slider.bounding_box()
            y = box["y"] + box["height"] / 2
            page.mouse.move(box["x"] + box["width"] * 0.5, y)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.75, y, steps=8)
            page.mouse.up()  # pointerup: the slider's release event renders the new view
            page.wait_for_function("src => document.querySelector('#view-image img')?.getAttribute('src') !== src",
                                   arg=before_src)
            page.wait_for_function("() => document.querySelector('#view-status')?.innerText.startsWith('rgb')")
            after = page.request.get(image.get_attribute("src")).body()
            azimuth = float(page.locator("#azimuth input[type=number]").input_value())
            final_status = status.inner_text()

            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "viewer.png"), full_page=True)
        finally:
            browser.close()
    assert after[:8] == b"\x89PNG\r\n\x1a\n" and after != before
    assert azimuth > 30, f"the drag should have turned the view (azimuth {azimuth})"
    assert final_status.startswith("rgb 64x64")
    assert hosts == {urlsplit(page_url).netloc}, f"the page reached other hosts: {hosts}"  # works offline
