// Keyboard shortcuts for the review loop and a zoomable evidence viewer. No dependencies.
(function () {
  "use strict";
  const page = document.body.dataset.page;
  // keys go to the page unless the focus is somewhere one types (a ticked checkbox is not)
  const typing = (e) => /^(TEXTAREA|SELECT)$/.test(e.target.tagName) || e.target.isContentEditable ||
    (e.target.tagName === "INPUT" && !/^(checkbox|radio|button|submit)$/.test(e.target.type));
  const submit = (id) => { const f = document.getElementById(id); if (f) { f.requestSubmit ? f.requestSubmit() : f.submit(); return true; } return false; };
  const focus = (id) => { const el = document.getElementById(id); if (el) { el.focus(); el.select && el.select(); return true; } return false; };

  // ---- evidence viewer: thumbnails, click/z to zoom (2x, 4x), drag to pan
  const stage = document.getElementById("stage");
  const main = document.getElementById("main-image");
  const thumbs = Array.from(document.querySelectorAll("#thumbs .thumb"));
  let zoom = 1, panX = 0, panY = 0, drag = null;
  function apply() {
    if (!main) return;
    main.style.transform = zoom === 1 ? "" : `translate(${panX}px, ${panY}px) scale(${zoom})`;
    stage.classList.toggle("zoomed", zoom > 1);
  }
  function zoomAt(x, y) {
    const next = zoom >= 4 ? 1 : zoom * 2;
    if (next === 1) { panX = panY = 0; } else {
      const r = main.getBoundingClientRect();
      const ox = (x - r.left) / zoom, oy = (y - r.top) / zoom;
      panX = panX - ox * (next - zoom); panY = panY - oy * (next - zoom);
    }
    zoom = next; apply();
  }
  function show(i) {
    if (!thumbs.length) return;
    i = (i + thumbs.length) % thumbs.length;
    thumbs.forEach((t, j) => t.classList.toggle("active", i === j));
    main.src = srcOf(thumbs[i]); zoom = 1; panX = panY = 0; apply();
  }
  const current = () => Math.max(0, thumbs.findIndex((t) => t.classList.contains("active")));
  // annotated copies (offender, stop line, signal, data bar) by default; the toggle shows the originals
  let view = "annotated";
  const srcOf = (t) => (view === "original" && t.dataset.original) || t.dataset.src;
  const viewToggle = document.getElementById("view-toggle");
  function toggleView() {
    view = view === "annotated" ? "original" : "annotated";
    thumbs.forEach((t) => { const img = t.querySelector("img"); if (img) img.src = srcOf(t); });
    if (main && thumbs.length) main.src = srcOf(thumbs[current()]);
    if (viewToggle) {
      viewToggle.setAttribute("aria-pressed", String(view === "original"));
      viewToggle.textContent = view === "original" ? "Show annotated" : "Show original";
    }
    if (stage) stage.dataset.view = view;
  }
  if (viewToggle) viewToggle.addEventListener("click", toggleView);
  thumbs.forEach((t, i) => t.addEventListener("click", () => show(i)));
  if (stage && main) {
    stage.addEventListener("click", (e) => { if (!drag || !drag.moved) zoomAt(e.clientX, e.clientY); });
    stage.addEventListener("mousedown", (e) => { if (zoom > 1) { drag = { x: e.clientX, y: e.clientY, px: panX, py: panY, moved: false }; e.preventDefault(); } });
    window.addEventListener("mousemove", (e) => { if (drag) { panX = drag.px + e.clientX - drag.x; panY = drag.py + e.clientY - drag.y; drag.moved = true; apply(); } });
    window.addEventListener("mouseup", () => { setTimeout(() => { drag = null; }, 0); });
  }

  // ---- queue: j/k select, Enter open
  const rows = Array.from(document.querySelectorAll("#queue tbody tr[data-href]"));
  let sel = -1;
  function select(i) {
    if (!rows.length) return;
    sel = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach((r, j) => r.classList.toggle("selected", j === sel));
    rows[sel].scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (typing(e)) { if (e.key === "Escape") e.target.blur(); return; }
    let done = false;
    if (page === "queue") {
      if (e.key === "j") { select(sel + 1); done = true; }
      else if (e.key === "k") { select(sel - 1); done = true; }
      else if (e.key === "Enter" && sel >= 0) { window.location = rows[sel].dataset.href; done = true; }
      else if (e.key === "s") { done = submit("start-review"); }
      else if (e.key === "/") { const f = document.querySelector(".filters input[name=plate]"); if (f) { f.focus(); done = true; } }
    } else if (page === "violation") {
      // approving is the one decision without a second step: it needs Shift, so a stray "a" never approves
      if ((e.key === "A" || e.key === "a") && e.shiftKey) done = submit("approve-form");
      else if (e.key === "x" || e.key === "r") done = focus("reject-reason");
      else if (e.key === "p") done = focus("plate-input");
      else if (e.key === "e") done = submit("escalate-form");
      else if (e.key === "n") done = submit("skip-form");
      else if (e.key === "c") done = submit("claim-form");
      else if (e.key === "q") { window.location = "/queue"; done = true; }
      else if (e.key === "o" && viewToggle) { toggleView(); done = true; }
      else if (e.key === "z" && main) { const r = stage.getBoundingClientRect(); zoomAt(r.left + r.width / 2, r.top + r.height / 2); done = true; }
      else if (e.key === "ArrowRight") { show(current() + 1); done = true; }
      else if (e.key === "ArrowLeft") { show(current() - 1); done = true; }
      else if (/^[1-6]$/.test(e.key)) { show(Number(e.key) - 1); done = true; }
    }
    if (done) e.preventDefault();
  });
})();
