"""The viewer in a real browser (headless Chromium): the azimuth slider and the mouse on the picture
turn the view, the path editor renders an mp4, the crop box shrinks the exported mesh, the Splats
tab makes Gaussian splats that the page draws and the mouse turns.

Needs pip ``playwright`` and Debian's ``chromium`` (``apt-get install chromium``; the tests never
download a browser). Leaves screenshots in ``test-artifacts/`` (``viewer.png``, ``viewer-drag.png``,
``viewer-path-editor.png``, ``viewer-3d.png``, ``viewer-splats.png``).
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"

import io  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

pytest.importorskip("gradio", reason="viewer extra not installed: pip install 'neuralfields[viewer]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed: pip install playwright")

from conftest import viewer_server  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
# WebGL 2 on the CPU (SwiftShader), so the 3D tab really draws what it loads.
WEBGL_ARGS = [a for a in CHROMIUM_ARGS if a != "--disable-gpu"] + [
    "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 45_000  # a render on two busy cores can take several seconds
SPLAT_STEPS = 100  # "Make splats" on the tiny run: enough for a recognisable picture
DISTILL_TIMEOUT_MS = 600_000  # those steps on two busy cores


@pytest.fixture(scope="module")
def page_url(tiny_run, tmp_path_factory):
    if not Path(CHROMIUM).is_file():
        pytest.skip("chromium not installed (apt-get install chromium)")
    from viewer import ViewerConfig

    # Small views with a preview pass, so the page shows the coarse-then-fine refinement quickly.
    config = ViewerConfig(max_resolution=128, default_resolution=64, preview_side=16,
                          output_dir=str(tmp_path_factory.mktemp("vb")), threads=1, splat_steps=SPLAT_STEPS)
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


# ------------------------------------------------------------------------------------ helpers


@contextmanager
def viewer_page(url: str, args: list[str] = CHROMIUM_ARGS):
    """A fresh page on the viewer with its first view rendered (64 px)."""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            wait_status(page, "#view-status", "rgb 64x64")
            yield page
        finally:
            browser.close()


def wait_status(page, selector: str, start: str, contains: bool = False, timeout_ms: float | None = None) -> str:
    test = "includes" if contains else "startsWith"
    page.wait_for_function(f"s => document.querySelector('{selector}')?.innerText.{test}(s)", arg=start,
                           timeout=timeout_ms)
    return page.locator(selector).inner_text()


def slider_value(page, elem_id: str) -> float:
    return float(page.locator(f"#{elem_id} input[type=number]").input_value())


def set_number(page, selector: str, value) -> None:
    box = page.locator(selector).first
    box.fill(str(value))
    box.press("Enter")


def drag(page, dx: float, dy: float, steps: int = 6, shift: bool = False, during=None) -> None:
    """Drag across the middle of the picture (``during(page)`` runs before the button is released)."""
    box = page.locator("#view-image img").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    if shift:
        page.keyboard.down("Shift")
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, steps + 1):
        page.mouse.move(x + dx * i / steps, y + dy * i / steps)
        time.sleep(0.1)
    if during is not None:
        during(page)
    page.mouse.up()
    if shift:
        page.keyboard.up("Shift")


def fetch(page, url: str) -> bytes:
    return page.request.get(url).body()


LABEL_PX = 40  # Model3D lays its label and download button over the top of its canvas


def canvas_picture(canvas) -> np.ndarray:
    """``float32 [H, W, 3]`` screenshot of a Model3D canvas below its label."""
    return np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB"), dtype=np.float32)[LABEL_PX:]


def drawn_share(picture: np.ndarray) -> float:
    """Share of pixels more than 30 levels (in some channel) away from the background: the commonest colour."""
    levels, counts = np.unique((picture // 8).reshape(-1, 3), axis=0, return_counts=True)
    background = levels[counts.argmax()] * 8 + 4
    return float((np.abs(picture - background).max(-1) > 30).mean())


def wait_drawn(canvas, share: float = 0.01, tries: int = 60) -> tuple[np.ndarray, float]:
    """The canvas once more than ``share`` of it differs from its background (the browser draws
    WebGL frames on its own schedule), or its last picture."""
    for _ in range(tries):
        time.sleep(0.5)
        picture = canvas_picture(canvas)
        drawn = drawn_share(picture)
        if drawn > share:
            break
    return picture, drawn


# ------------------------------------------------------------------------------------ mouse


def test_mouse_drag_orbits_wheel_zooms_shift_pans(page_url):
    with viewer_page(page_url) as page:
        image = page.locator("#view-image img")
        before_src = image.get_attribute("src")
        before = fetch(page, before_src)
        moving = []

        def screenshot_while_moving(page):
            moving.append(wait_status(page, "#view-status", "moving:"))  # a low-resolution frame arrived
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "viewer-drag.png"))

        drag(page, 100, 0, during=screenshot_while_moving)
        page.wait_for_function("src => document.querySelector('#view-image img')?.getAttribute('src') !== src "
                               "&& document.querySelector('#view-status')?.innerText.startsWith('rgb 64x64')",
                               arg=before_src)
        after = fetch(page, image.get_attribute("src"))
        azimuth = slider_value(page, "azimuth")
        assert moving and moving[0].startswith("moving: 16x16"), moving
        assert after[:8] == b"\x89PNG\r\n\x1a\n" and after != before
        assert abs(azimuth - (-40.0)) < 1.0, f"a 100 px drag to the right turns the view 40 degrees, got {azimuth}"

        distance = slider_value(page, "distance")
        box = image.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, 300)  # away from the scene
        page.wait_for_function("d => parseFloat(document.querySelector('#distance input[type=number]').value) > d "
                               "&& document.querySelector('#view-status')?.innerText.startsWith('rgb 64x64')",
                               arg=distance + 0.2)

        target = page.locator("#nav-target textarea, #nav-target input").first
        assert target.input_value() == "0,0,0"
        drag(page, 60, 30, shift=True)
        page.wait_for_function("() => document.querySelector('#nav-target textarea, #nav-target input')"
                               "?.value !== '0,0,0'")
        wait_status(page, "#view-status", "rgb 64x64")
        assert slider_value(page, "azimuth") == azimuth  # panning leaves the orbit angles alone


def settled(page, azimuth: float, elevation: float, distance: float) -> None:
    """Wait until the sliders show this camera and its full frame has arrived (a timeout fails)."""
    page.wait_for_function(
        "([az, el, dist]) => { const v = (id) => parseFloat(document.querySelector(`#${id} input[type=number]`)?.value);"
        " return Math.abs(v('azimuth') - az) < 0.5 && Math.abs(v('elevation') - el) < 0.5"
        " && Math.abs(v('distance') - dist) < 0.01"
        " && document.querySelector('#view-status')?.innerText.startsWith('rgb 64x64'); }",
        arg=[azimuth, elevation, distance])


@contextmanager
def busy_server(page):
    """The page's requests wait until the block ends, as behind a server too busy to answer while
    the mouse moves: no frame, and no slider value, comes back meanwhile. Yields the held requests."""
    held, released = [], []

    def joins(url: str) -> bool:
        return "/queue/join" in url

    def hold(route) -> None:
        if released:
            route.continue_()
        else:
            held.append(route)

    page.route(joins, hold)
    try:
        yield held
    finally:
        released.append(True)
        for route in held:
            route.continue_()
        page.unroute(joins)


def test_quick_gestures_add_up(page_url):
    """Gestures that start before the sliders caught up with the last one still add up exactly:
    the page keeps its own camera and sends absolute values."""
    with viewer_page(page_url) as page:
        azimuth, elevation, distance = (slider_value(page, i) for i in ("azimuth", "elevation", "distance"))
        with busy_server(page) as held:
            drag(page, 100, 0)
            drag(page, 100, 0)  # starts while the sliders still show the view before the first drag
            assert held and slider_value(page, "azimuth") == azimuth
        settled(page, azimuth - 80.0, elevation, distance)
        time.sleep(1.0)  # nothing still on its way moves them afterwards
        assert abs(slider_value(page, "azimuth") - (azimuth - 80.0)) < 0.5, slider_value(page, "azimuth")

        # A burst of three drags and a wheel step, none waiting for the frames of the others.
        azimuth, elevation, distance = (slider_value(page, i) for i in ("azimuth", "elevation", "distance"))
        with busy_server(page) as held:
            for dx, dy in ((100, 0), (-50, 25), (30, -10)):
                drag(page, dx, dy, steps=3)
            box = page.locator("#view-image img").bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.wheel(0, 300)
            time.sleep(0.5)  # the wheel's full frame is asked for 200 ms after its last step
            assert held
        # 0.4 degrees a pixel, the scene following the pointer; distance x exp(0.0015 x 300).
        expected = (azimuth - 0.4 * 80, elevation + 0.4 * 15, min(4.0, distance * float(np.exp(0.45))))
        settled(page, *expected)
        time.sleep(1.0)
        got = tuple(slider_value(page, i) for i in ("azimuth", "elevation", "distance"))
    assert all(abs(g - e) < 0.5 for g, e in zip(got[:2], expected[:2])) and abs(got[2] - expected[2]) < 0.01, (got, expected)


# ------------------------------------------------------------------------------------ path editor


def test_path_editor_saves_and_renders_mp4(page_url, tmp_path):
    import imageio.v3 as iio

    with viewer_page(page_url) as page:
        page.get_by_role("tab", name="Camera path").click()
        page.locator("#kf-add").click()
        wait_status(page, "#kf-status", "1 keyframe")
        page.get_by_role("tab", name="View").click()
        drag(page, -150, 40)
        wait_status(page, "#view-status", "rgb 64x64")
        page.get_by_role("tab", name="Camera path").click()
        page.locator("#kf-add").click()
        wait_status(page, "#kf-status", "2 keyframes")
        for elem_id, value in (("kf-seconds", 1.5), ("kf-fps", 4), ("kf-res", 32)):
            set_number(page, f"#{elem_id} input[type=number]", value)
        page.locator("#kf-save").click()
        command = page.locator("#kf-command textarea, #kf-command input").first
        page.wait_for_function("() => (document.querySelector('#kf-command textarea, #kf-command input')?.value "
                               "|| '').startsWith('neuralfields render')")
        assert "--path keyframes-" in command.input_value()
        page.locator("#kf-render").click()
        status = wait_status(page, "#kf-status", "frames of", contains=True)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "viewer-path-editor.png"), full_page=True)
        video = tmp_path / "path.mp4"
        video.write_bytes(fetch(page, page.locator("#kf-video video").get_attribute("src")))
        links = [a.get_attribute("href") for a in page.locator("#kf-files a").all()]
    assert status.startswith("6 frames of 32x32"), status
    assert sum(1 for _ in iio.imiter(str(video))) == 6
    assert any("keyframes-" in link for link in links) and any("nerfstudio-" in link for link in links)


# ------------------------------------------------------------------------------------ 3D tab


def test_crop_box_shrinks_the_mesh(page_url, tmp_path):
    import trimesh

    def exported(page, name: str) -> Path:
        link = "#geometry-file a"
        previous = page.locator(link).first.get_attribute("href") if page.locator(link).count() else ""
        page.locator("#mesh-go").click()
        page.wait_for_function("([sel, p]) => { const a = document.querySelector(sel); "
                               "return a && a.href !== p && a.href.endsWith('.glb'); }", arg=[link, previous])
        out = tmp_path / name
        out.write_bytes(fetch(page, page.locator(link).first.get_attribute("href")))
        return out

    with viewer_page(page_url, WEBGL_ARGS) as page:
        page.get_by_role("tab", name="3D").click()
        set_number(page, "#mesh-res input[type=number]", 32)
        full = trimesh.load(exported(page, "full.glb"), force="mesh").bounds
        for axis, value in zip(("xmin", "ymin", "zmin", "xmax", "ymax", "zmax"), (-0.3, -0.3, -0.3, 0.3, 0.3, 0.3)):
            set_number(page, f"#crop-{axis} input", value)
        cropped = trimesh.load(exported(page, "cropped.glb"), force="mesh").bounds
        # The browser draws the mesh itself (Babylon.js): the canvas soon shows more than its background.
        _, drawn = wait_drawn(page.locator("#model-3d canvas").first)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "viewer-3d.png"), full_page=True)
    # GLB is y-up (x, z, -y): every extent of the cropped mesh lies within 0.6 and below the full one.
    assert ((cropped[1] - cropped[0]) < (full[1] - full[0]) - 0.1).all(), (full, cropped)
    assert (np.abs(cropped) <= 0.3 + 1e-4).all(), cropped
    assert drawn > 0.01, f"the mesh canvas stayed blank ({drawn:.3%} drawn)"


# ------------------------------------------------------------------------------------ Splats tab


def test_splats_tab_makes_splats_the_browser_draws_and_turns(page_url, tmp_path):
    from neuralfields.splats.io import read_ply

    with viewer_page(page_url, WEBGL_ARGS) as page:
        page.get_by_role("tab", name="Splats").click()
        wait_status(page, "#splats-status", "no distilled splats yet", contains=True)
        page.locator("#splats-make").click()
        # The progress bar names the distillation's stage and counts its steps.
        bar = page.wait_for_function("() => (document.body.innerText.match(/(teacher views|photographs)[^\\n]*/) "
                                     "|| [null])[0]", timeout=DISTILL_TIMEOUT_MS).json_value()
        status = wait_status(page, "#splats-status", "made here from", contains=True, timeout_ms=DISTILL_TIMEOUT_MS)
        link = page.locator("#splats-file a").first
        page.wait_for_function("() => document.querySelector('#splats-file a')?.href.endsWith('.ply')")
        ply = tmp_path / "splats.ply"
        ply.write_bytes(fetch(page, link.get_attribute("href")))
        canvas = page.locator("#splats-3d canvas").first
        # gsplat.js draws the .ply in the page: soon much of the canvas differs from its background.
        before, drawn = wait_drawn(canvas, share=0.05)
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator("#splats-3d").screenshot(path=str(ARTIFACTS / "viewer-splats-first.png"))
        box = canvas.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        for i in range(1, 9):
            page.mouse.move(x + 15 * i, y + 3 * i)
            time.sleep(0.05)
        page.mouse.up()
        changed = 0.0
        for _ in range(20):  # the orbit eases towards the dragged angle over a few frames
            time.sleep(0.5)
            after = canvas_picture(canvas)
            changed = float((np.abs(after - before).max(-1) > 30).mean())
            if changed > 0.05:
                break
        page.mouse.wheel(0, 600)  # away from the scene: it shrinks on the canvas
        zoomed = drawn_share(after)
        for _ in range(20):
            time.sleep(0.5)
            zoomed = drawn_share(canvas_picture(canvas))
            if zoomed < 0.7 * drawn_share(after):
                break
        page.locator("#splats-3d").screenshot(path=str(ARTIFACTS / "viewer-splats.png"))
        make_visible = page.locator("#splats-make").is_visible()
    assert bar.startswith(("teacher views", "photographs")), bar
    assert len(read_ply(ply)) > 1000 and f"({SPLAT_STEPS} steps at 48 px" in status, status
    assert drawn > 0.05, f"the splat canvas stayed blank ({drawn:.2%} drawn)"
    assert changed > 0.05 and drawn_share(after) > 0.05, f"dragging did not turn the splats ({changed:.2%} changed)"
    assert 0.01 < zoomed < 0.7 * drawn_share(after), f"the wheel did not zoom out ({drawn_share(after):.2%} -> {zoomed:.2%})"
    assert not make_visible, "the page offers Make splats only while the run has none"
