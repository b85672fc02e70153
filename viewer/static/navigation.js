// Mouse navigation on the viewer's picture (#view-image): drag orbits, shift-drag pans, the
// wheel zooms. Runs once per page (gr.HTML js_on_load). The page keeps its own camera
// (azimuth, elevation, distance, pan target) across gestures: every change asks the server for
// a low-resolution frame by clicking the hidden #nav-go button, whose js
// (window.nfNav.request) swaps this camera's absolute values into the request. That event is
// "always_last": while one frame renders, newer requests replace each other instead of
// queueing. On pointer-up, or 200 ms after the last wheel step, the full frame is requested.
// The server returns the slider values with each frame, so the sliders follow the mouse, but
// late: starting a gesture from them would drop the turns still on their way. So a gesture
// starts from this camera, and quick gestures add up exactly; the sliders become the camera
// again only when the user moves one, or when a handler set the view (a run loaded, a
// training camera) and with it a new number in the hidden #nav-mark box.
(() => {
  if (window.nfNav) return;
  const ORBIT_DEG_PER_PX = 0.4;
  const ZOOM_PER_WHEEL_UNIT = 0.0015; // distance *= exp(deltaY * this)
  const IDLE_MS = 200;
  // Small frames fill the picture's box (the browser scales them up); no native image drag,
  // text selection or touch scrolling while the mouse navigates.
  const style = document.createElement("style");
  style.textContent = "#view-image img { width: 100%; height: 100%; object-fit: contain; cursor: grab; " +
    "user-select: none; -webkit-user-drag: none; touch-action: none; }";
  document.head.appendChild(style);
  const ELEVATION = [-89, 89];
  const DISTANCE = [0.1, 4];
  const TARGET_LIMIT = 10;
  // Inputs of the navigate event, in order (viewer/panels/navigation.py nav_inputs).
  const AZ = 1, EL = 2, DIST = 3, TARGET = 8, QUALITY = 9, SEQ = 10;

  const q = (selector) => document.querySelector(selector);
  const clamp = (v, [lo, hi]) => Math.min(hi, Math.max(lo, v));
  const nav = (window.nfNav = { seq: 0, camera: null, mark: null, quality: "full", drag: null, idle: null, frame: null });

  function number(id) {
    const v = parseFloat(q(`#${id} input[type=number]`)?.value);
    return Number.isFinite(v) ? v : 0;
  }

  function current() {
    const text = q("#nav-target textarea, #nav-target input")?.value || "0,0,0";
    const target = text.split(",").map(Number);
    return {
      az: number("azimuth"), el: number("elevation"), dist: number("distance"), fov: number("fov"),
      target: target.length === 3 && target.every(Number.isFinite) ? target : [0, 0, 0],
    };
  }

  const round = (v, digits) => Number(v.toFixed(digits));
  const wrap = (deg) => ((((deg + 180) % 360) + 360) % 360) - 180;

  // A gesture starts from the page's camera, or from the sliders when the user moved one or a
  // handler set the view since; the field of view is always the slider's.
  function begin() {
    const shown = current(), mark = number("nav-mark");
    if (!nav.camera || mark !== nav.mark) {
      nav.camera = shown;
      nav.mark = mark;
    }
    nav.camera.fov = shown.fov;
  }

  nav.request = (args) => {
    const out = args.slice();
    const c = nav.camera;
    if (c) {
      out[AZ] = round(c.az, 2);
      out[EL] = round(c.el, 2);
      out[DIST] = round(c.dist, 4);
      out[TARGET] = c.target.map((v) => round(v, 5)).join(",");
    }
    out[QUALITY] = nav.quality;
    out[SEQ] = nav.seq;
    return out;
  };

  function send(quality) {
    nav.quality = quality;
    nav.seq += 1;
    q("#nav-go")?.click();
  }

  // At most one preview request per animation frame; "always_last" drops the rest server-side.
  function preview() {
    if (nav.frame !== null) return;
    nav.frame = requestAnimationFrame(() => {
      nav.frame = null;
      send("preview");
    });
  }

  function orbit(c, dx, dy) {
    c.az = wrap(c.az - dx * ORBIT_DEG_PER_PX); // the scene follows the pointer
    c.el = clamp(c.el + dy * ORBIT_DEG_PER_PX, ELEVATION);
  }

  // Same frame as viewer/navigation.py view_pose: axes (b1, b2, up), offsets in training distances.
  function pan(c, dx, dy, heightPx) {
    const a = (c.az * Math.PI) / 180, e = (c.el * Math.PI) / 180;
    const back = [Math.cos(e) * Math.cos(a), Math.cos(e) * Math.sin(a), Math.sin(e)];
    const right = [-Math.sin(a), Math.cos(a), 0];
    const up = [ // back x right
      back[1] * right[2] - back[2] * right[1],
      back[2] * right[0] - back[0] * right[2],
      back[0] * right[1] - back[1] * right[0],
    ];
    const perPx = (2 * c.dist * Math.tan((c.fov * Math.PI) / 360)) / Math.max(heightPx, 1);
    c.target = c.target.map((t, i) => clamp(t - right[i] * dx * perPx + up[i] * dy * perPx, [-TARGET_LIMIT, TARGET_LIMIT]));
  }

  // The picture itself (gradio wraps it in a button); the icon buttons above it keep their clicks.
  const picture = (event) => event.target?.closest?.("#view-image img") || null;

  document.addEventListener("pointerdown", (event) => {
    const img = picture(event);
    if (!img || event.button !== 0) return;
    event.preventDefault();
    begin();
    nav.drag = { x: event.clientX, y: event.clientY, height: img.getBoundingClientRect().height, moved: false };
    img.setPointerCapture?.(event.pointerId);
  }, true);

  document.addEventListener("pointermove", (event) => {
    const d = nav.drag;
    if (!d) return;
    const dx = event.clientX - d.x, dy = event.clientY - d.y;
    if (dx === 0 && dy === 0) return;
    d.x = event.clientX;
    d.y = event.clientY;
    d.moved = true;
    if (event.shiftKey) pan(nav.camera, dx, dy, d.height);
    else orbit(nav.camera, dx, dy);
    preview();
  }, true);

  const release = () => {
    const d = nav.drag;
    if (!d) return;
    nav.drag = null;
    if (d.moved) send("full");
  };
  document.addEventListener("pointerup", release, true);
  document.addEventListener("pointercancel", release, true);
  document.addEventListener("dragstart", (event) => { if (picture(event)) event.preventDefault(); }, true);
  // The user moving a pose slider (only the user's changes fire input events) makes it the camera.
  document.addEventListener("input", (event) => {
    if (event.target?.closest?.("#azimuth, #elevation, #distance")) nav.camera = null;
  }, true);

  document.addEventListener("wheel", (event) => {
    if (!picture(event)) return;
    event.preventDefault(); // zoom the view, not the page
    if (nav.idle === null && !nav.drag) begin();
    nav.camera.dist = clamp(nav.camera.dist * Math.exp(event.deltaY * ZOOM_PER_WHEEL_UNIT), DISTANCE);
    preview();
    clearTimeout(nav.idle);
    nav.idle = setTimeout(() => {
      nav.idle = null;
      send("full");
    }, IDLE_MS);
  }, { capture: true, passive: false });
})();
