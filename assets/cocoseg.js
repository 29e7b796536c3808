/* cocoseg browser-side helpers: things that must not wait for the server. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  cocoseg: {
    /* Segment page: the mask layer's opacity follows the slider without a round trip. */
    setOpacity: function (value) {
      return { opacity: value === undefined || value === null ? 0.55 : value };
    },
    /* Explore page: pass a queued job on to its runner, and nothing else, so a page whose
       statistics were cached starts no background process at all. */
    startQueuedJob: function (job) {
      if (!job || !job.job) throw window.dash_clientside.PreventUpdate;
      return job;
    },
    /* Compare page: zooming or panning one panel applies the same axis ranges to all. */
    syncPanels: function () {
      const noUpdate = window.dash_clientside.no_update;
      const context = window.dash_clientside.callback_context;
      if (!context.triggered || !context.triggered.length) return noUpdate;
      const trigger = context.triggered[0];
      const data = trigger.value;
      if (!data) return noUpdate;
      const update = {};
      Object.keys(data).forEach(function (key) {
        if (/^[xy]axis\.(range|autorange)/.test(key)) update[key] = data[key];
      });
      const signature = JSON.stringify(update);
      if (signature === "{}" || window.cocosegLastSync === signature) return noUpdate;
      window.cocosegLastSync = signature;
      const sourceId = trigger.prop_id.slice(0, trigger.prop_id.lastIndexOf("."));
      document.querySelectorAll(".compare-panel").forEach(function (element) {
        const plot = element.querySelector(".js-plotly-plot");
        if (element.id !== sourceId && plot && window.Plotly) window.Plotly.relayout(plot, update);
      });
      return Date.now();
    },
  },
});

/* Compare page: the wheel scrolls the page, as it does everywhere else; with Ctrl (or Cmd) held it
   zooms the panel under the pointer, as in an image viewer. Plotly's scroll zoom would otherwise take
   every wheel over the grid, and the grid is most of the page. Stopped here, in the capture phase,
   the wheel never reaches Plotly and the browser scrolls. */
document.addEventListener("wheel", function (event) {
  if (event.ctrlKey || event.metaKey) return;
  if (event.target instanceof Element && event.target.closest(".compare-panel")) event.stopPropagation();
}, { capture: true });

/* After a choice, a dropdown (Dash 4) keeps the focus on its closed trigger button, where a letter
   or an arrow would open its type-ahead search. A page's shortcut key goes to the page instead: the
   page's handlers listen in the capture phase and take the key from the dropdown
   (cocosegTakeKey). The keys that open a dropdown (Enter, Space, Up, Down) stay with it. */
function cocosegDropdownTrigger(target) {
  return target && target.closest ? target.closest("button.dash-dropdown") : null;
}
function cocosegDropdownKey(event) {
  return Boolean(cocosegDropdownTrigger(event.target)) && /^(Enter| |ArrowUp|ArrowDown)$/.test(event.key);
}
function cocosegTakeKey(event) {
  const trigger = cocosegDropdownTrigger(event.target);
  if (trigger) {
    event.stopPropagation();
    trigger.blur();
  }
  event.preventDefault();
}

/* Explore page: arrow keys turn the image browser's pages (not while typing in a field). */
document.addEventListener("keydown", function (event) {
  if (window.location.pathname !== "/explore" || event.altKey || event.ctrlKey || event.metaKey) return;
  const target = event.target;
  if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
  const button = { ArrowLeft: "explore-previous", ArrowRight: "explore-next" }[event.key];
  const element = button && document.getElementById(button);
  if (element) {
    element.click();
    cocosegTakeKey(event);
  }
}, true);

/* Review: J / K (or the arrow keys) move along the queue, Enter opens the focused image in
   Annotate (a link), N opens the first image not corrected yet. */
document.addEventListener("keydown", function (event) {
  if (window.location.pathname !== "/review" || event.altKey || event.ctrlKey || event.metaKey) return;
  const target = event.target;
  const typing = target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  if ((typing && !/^(checkbox|radio)$/.test(target.type)) || cocosegDropdownKey(event)) return;
  const cards = Array.from(document.querySelectorAll("#review-queue .review-card"));
  if (!cards.length) return;
  const key = event.key.toLowerCase();
  const step = { j: 1, arrowdown: 1, arrowright: 1, k: -1, arrowup: -1, arrowleft: -1 }[key];
  if (step) {
    const index = cards.indexOf(document.activeElement);
    const next = index < 0 ? 0 : Math.max(0, Math.min(cards.length - 1, index + step));
    cocosegTakeKey(event);
    cards[next].focus();
    cards[next].scrollIntoView({ block: "nearest" });
  } else if (key === "n") {
    const first = cards.find(function (card) { return !card.classList.contains("review-done"); });
    if (first) first.click();
    cocosegTakeKey(event);
  }
}, true);

/* Prepare / Train: Ctrl+Enter (Cmd+Enter) starts the job from anywhere in the form; a
   number field commits its value first (dbc inputs debounce until blur). */
document.addEventListener("keydown", function (event) {
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
  const button = document.getElementById("train-start") || document.getElementById("prepare-start");
  if (!button || button.disabled) return;
  if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
  event.preventDefault();
  window.setTimeout(function () { button.click(); }, 50);
});

/* Annotate: hands stay on the keys. 1-9 class, E eraser, [ ] brush, P L R H draw, B C S W M G
   click-to-mask tools, Enter a new object, Ctrl+Z undo (a stroke; the last tool call once the
   canvas has none), Space preview, Ctrl+S save, N next in the review queue (not while typing). */
const COCOSEG_CLICK_TOOLS = { b: "box", c: "clicks", s: "snap", w: "wand", m: "regions", g: "grow" };
function cocosegCanvasButton(match) {
  return Array.from(document.querySelectorAll(".annotate-canvas button")).find(match);
}
function cocosegHolder() {
  return document.querySelector("#annotate-canvas-area > div");
}
function cocosegStrokeCount() {
  const holder = cocosegHolder();
  return holder ? parseInt(holder.dataset.strokes || "0", 10) : 0;
}
function cocosegCountStroke(step) {
  const holder = cocosegHolder();
  if (holder) holder.dataset.strokes = String(Math.max(0, cocosegStrokeCount() + step));
}
document.addEventListener("keydown", function (event) {
  if (window.location.pathname !== "/annotate") return;
  const target = event.target;
  if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName) && target.type !== "radio")) return;
  if (cocosegDropdownKey(event)) return;
  const setProps = window.dash_clientside && window.dash_clientside.set_props;
  const key = event.key;
  const lower = key.toLowerCase();
  let handled = true;
  if ((event.ctrlKey || event.metaKey) && lower === "s") {
    const save = document.getElementById("annotate-save");
    if (save) save.click();
  } else if ((event.ctrlKey || event.metaKey) && lower === "z") {
    const undo = cocosegCanvasButton(function (button) { return /undo/i.test(button.title || "") || /undo/i.test(button.innerHTML); });
    if (cocosegStrokeCount() > 0 && undo) {
      undo.click();
      cocosegCountStroke(-1);
    } else {
      const toolUndo = document.getElementById("annotate-tool-undo");
      if (toolUndo) toolUndo.click();
    }
  } else if (event.ctrlKey || event.metaKey || event.altKey) {
    handled = false;
  } else if (/^[1-9]$/.test(key) || lower === "e") {
    const radios = document.querySelectorAll("#annotate-class input[type=radio]");
    const radio = lower === "e" ? radios[radios.length - 1] : radios[parseInt(key, 10) - 1];
    if (radio) radio.click();
  } else if ((key === "[" || key === "]") && setProps) {
    const slider = document.querySelector("#annotate-brush [role=slider]");
    const current = slider ? parseInt(slider.getAttribute("aria-valuenow"), 10) : 12;
    setProps("annotate-brush", { value: Math.max(1, Math.min(60, current + (key === "]" ? 2 : -2))) });
  } else if ({ p: "pencil", l: "line", r: "rectangle", h: "pan" }[lower] && setProps) {
    setProps("annotate-tool", { value: { p: "pencil", l: "line", r: "rectangle", h: "pan" }[lower] });
  } else if (COCOSEG_CLICK_TOOLS[lower] && setProps) {
    setProps("annotate-tool", { value: COCOSEG_CLICK_TOOLS[lower] });
  } else if (key === "Enter" || key === "Escape") {
    const fresh = document.getElementById("annotate-tool-new-object");
    if (fresh) fresh.click();
  } else if (key === " ") {
    const preview = cocosegCanvasButton(function (button) { return button.textContent.trim() === "Preview"; });
    if (preview) preview.click();
  } else if (lower === "n") {
    const next = document.getElementById("annotate-next");
    if (next) next.click();
  } else {
    handled = false;
  }
  if (handled) cocosegTakeKey(event);
}, true);

/* Annotate click-to-mask: while a tool of COCOSEG_CLICK_TOOLS is chosen, the canvas draws nothing
   itself; each mark (a box drag, a click, a snap stroke) goes to the server as fractions of the
   canvas through the annotate-tool-request Store (only marks travel, never pixels). Left click
   adds, right click or Shift removes, Alt relabels a model region. A rubber band, the stroke or
   a dot shows at once; the server's answer replaces them. */
function cocosegClickTool() {
  const checked = document.querySelector("#annotate-tool input:checked");
  const tools = Object.values(COCOSEG_CLICK_TOOLS);
  return checked && tools.indexOf(checked.value) >= 0 ? checked.value : null;
}
/* The fabric canvas behind a dash-canvas, found through React's fiber (dash-canvas keeps it as
   component._sketch._fc): its zoom buttons scale the drawing and the pan tool moves the view, so a
   mark is placed on the picture through fabric's own pointer, not the element's box. */
function cocosegFabric(frame) {
  const element = frame.querySelector("canvas.lower-canvas") || frame;  /* the canvas React rendered */
  const key = Object.keys(element).find(function (name) { return name.indexOf("__reactFiber$") === 0 || name.indexOf("__reactInternalInstance$") === 0; });
  let fiber = key ? element[key] : null;
  for (let depth = 0; fiber && depth < 30; depth += 1, fiber = fiber.return) {
    const instance = fiber.stateNode;
    if (instance && instance._sketch && instance._sketch._fc) return instance._sketch._fc;
  }
  return null;
}
function cocosegFraction(event, frame) {
  const clamp = function (value) { return Math.max(0, Math.min(1, value)); };
  const fabric = cocosegFabric(frame);
  const picture = fabric && fabric.getObjects().find(function (item) { return item.type === "image"; });
  if (picture) {
    const pointer = fabric.getPointer(event);
    return [
      clamp((pointer.x - picture.left) / (picture.width * picture.scaleX)),
      clamp((pointer.y - picture.top) / (picture.height * picture.scaleY)),
    ];
  }
  const rect = frame.getBoundingClientRect();
  return [clamp((event.clientX - rect.left) / rect.width), clamp((event.clientY - rect.top) / rect.height)];
}
function cocosegFeedback(frame) {
  let sketch = frame.querySelector("svg.tool-sketch");
  if (!sketch) {
    sketch = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    sketch.setAttribute("class", "tool-sketch");
    frame.appendChild(sketch);
  }
  return sketch;
}
function cocosegSketch(mark) {
  const sketch = cocosegFeedback(mark.frame);
  const colour = mark.positive ? "#2ecc71" : "#e74c3c";
  const at = function (point) { return point; };
  const first = mark.screen[0];
  const last = mark.screen[mark.screen.length - 1];
  if (mark.tool === "box" && mark.points.length > 1) {
    sketch.innerHTML = '<rect x="' + Math.min(first[0], last[0]) + '" y="' + Math.min(first[1], last[1]) +
      '" width="' + Math.abs(last[0] - first[0]) + '" height="' + Math.abs(last[1] - first[1]) +
      '" fill="none" stroke="#ffd400" stroke-width="2" stroke-dasharray="6 3"/>';
  } else if (mark.tool === "snap" && mark.points.length > 1) {
    const points = mark.screen.map(function (point) { return at(point).join(","); }).join(" ");
    sketch.innerHTML = '<polyline points="' + points + '" fill="none" stroke="' + colour +
      '" stroke-opacity="0.6" stroke-linecap="round" stroke-width="' + mark.brush + '"/>';
  } else {
    sketch.innerHTML = '<circle cx="' + first[0] + '" cy="' + first[1] + '" r="5" fill="' + colour + '" stroke="#fff" stroke-width="2"/>';
  }
}
let cocosegMark = null;
function cocosegScreen(event, frame) {
  const rect = frame.getBoundingClientRect();
  return [event.clientX - rect.left, event.clientY - rect.top];
}
/* The server draws the object's box and clicks for the unzoomed picture: hidden while zoomed or panned. */
function cocosegMarkZoom(frame) {
  const fabric = cocosegFabric(frame);
  const picture = fabric && fabric.getObjects().find(function (item) { return item.type === "image"; });
  const transform = fabric ? fabric.viewportTransform : [1, 0, 0, 1, 0, 0];
  const moved = transform[0] !== 1 || transform[3] !== 1 || transform[4] !== 0 || transform[5] !== 0;
  /* dash-canvas fits the picture to its width W as round(height * W / width) rows; react-sketch draws the
     canvas 2 px narrower than W. Any other shown width means the zoom buttons scaled the picture. */
  const nominal = frame.getBoundingClientRect().width + 2;
  const fitted = picture ? picture.width * Math.round(picture.height * nominal / picture.width) / picture.height : 0;
  const scaled = picture && Math.abs(picture.width * picture.scaleX - fitted) > 1;
  const area = frame.closest(".annotate-canvas");
  if (area) area.classList.toggle("annotate-zoomed", Boolean(moved || scaled || (picture && Math.abs(picture.left) + Math.abs(picture.top) > 1)));
}
function cocosegBlock(event) {
  event.preventDefault();
  event.stopImmediatePropagation();
}
document.addEventListener("pointerdown", function (event) {
  const frame = event.target.closest && event.target.closest("#annotate-canvas-area .canvas-container");
  if (!frame || window.location.pathname !== "/annotate") return;
  const tool = cocosegClickTool();
  if (!tool) {
    return;
  }
  cocosegBlock(event);
  const slider = document.querySelector("#annotate-brush [role=slider]");
  const brush = slider ? parseInt(slider.getAttribute("aria-valuenow"), 10) : 12;
  cocosegMarkZoom(frame);
  cocosegMark = {
    tool: tool,
    frame: frame,
    points: [cocosegFraction(event, frame)],
    screen: [cocosegScreen(event, frame)],
    brush: brush,
    positive: !(event.button === 2 || event.shiftKey),
    relabel: event.altKey,
    radius: Math.max(0.002, brush / 2 / frame.getBoundingClientRect().width),  /* unzoomed canvas pixels */
  };
  cocosegSketch(cocosegMark);
}, true);
document.addEventListener("pointermove", function (event) {
  if (!cocosegMark) return;
  cocosegBlock(event);
  const point = cocosegFraction(event, cocosegMark.frame);
  const screen = cocosegScreen(event, cocosegMark.frame);
  if (cocosegMark.tool === "box") {
    cocosegMark.points = [cocosegMark.points[0], point];
    cocosegMark.screen = [cocosegMark.screen[0], screen];
  } else if (cocosegMark.tool === "snap" && cocosegMark.points.length < 1500) {
    cocosegMark.points.push(point);
    cocosegMark.screen.push(screen);
  }
  cocosegSketch(cocosegMark);
}, true);
document.addEventListener("pointerup", function (event) {
  const frame = event.target.closest && event.target.closest("#annotate-canvas-area .canvas-container");
  if (!cocosegMark) {
    if (frame && window.location.pathname === "/annotate") cocosegCountStroke(1);  /* a brush stroke */
    return;
  }
  cocosegBlock(event);
  const mark = cocosegMark;
  cocosegMark = null;
  const first = mark.points[0];
  const last = mark.points[mark.points.length - 1];
  const dragged = Math.abs(last[0] - first[0]) > 0.01 && Math.abs(last[1] - first[1]) > 0.01;
  let kind = "click";
  let points = [first];
  if (mark.tool === "box" && dragged) {
    kind = "box";
    points = [first, last];
  } else if (mark.tool === "snap") {
    kind = "stroke";
    points = mark.points;
  }
  const request = {
    tool: mark.tool, kind: kind, points: points, positive: mark.positive, relabel: mark.relabel,
    radius: mark.radius, sent: Date.now(),
  };
  /* Strokes drawn since the canvas was mounted reach the server with the mark: the canvas publishes
     them when its Preview button is pressed. */
  const preview = cocosegStrokeCount() > 0 &&
    cocosegCanvasButton(function (button) { return button.textContent.trim() === "Preview"; });
  if (preview) preview.click();
  window.setTimeout(function () {
    window.dash_clientside.set_props("annotate-tool-request", { data: request });
  }, preview ? 60 : 0);
}, true);
["mousedown", "mousemove", "mouseup", "contextmenu", "touchstart"].forEach(function (name) {
  document.addEventListener(name, function (event) {
    const frame = event.target.closest && event.target.closest("#annotate-canvas-area .canvas-container");
    if (frame && cocosegClickTool()) cocosegBlock(event);
  }, true);
});

/* Uploads: dcc.Upload drops files above its max_size without a word (dash #2638), so the
   browser says it: a file input or a drop on an .upload-zone with a file above the limit
   shown in the page (#upload-limit-bytes) gets a message beside the zone. */
function cocosegCheckSizes(files, zone) {
  const limitElement = document.getElementById("upload-limit-bytes");
  if (!limitElement || !files || !zone) return;
  const limit = parseInt(limitElement.textContent, 10);
  const tooBig = Array.from(files).filter(function (file) { return file.size > limit; });
  let note = zone.parentElement.querySelector(".upload-size-message");
  if (!note) {
    note = document.createElement("div");
    note.className = "upload-size-message alert alert-danger py-1 px-2 mt-2 mb-0 small";
    zone.insertAdjacentElement("afterend", note);
  }
  note.textContent = tooBig.map(function (file) {
    return file.name + ": " + (file.size / 1048576).toFixed(1) + " MB is over the " + (limit / 1048576).toFixed(0) + " MB limit; it was not uploaded";
  }).join(" · ");
  note.style.display = tooBig.length ? "" : "none";
}
document.addEventListener("change", function (event) {
  const input = event.target;
  const zone = input.closest && input.closest(".upload-zone");
  if (!zone || !input.files) return;
  cocosegCheckSizes(input.files, zone);
  /* Choosing the same file again fires no "change" while the input still holds it
     (dash #1287): empty it once the upload component has read the files. */
  setTimeout(function () { input.value = ""; }, 0);
}, true);
document.addEventListener("drop", function (event) {
  const zone = event.target.closest && event.target.closest(".upload-zone");
  if (zone && event.dataTransfer) cocosegCheckSizes(event.dataTransfer.files, zone);
}, true);

/* Any page: a callback the server refused for the job-start rate limit (HTTP 429, see
   cocoseg/app/limits.py) would otherwise change nothing on the page. Say so, with the wait the
   server asks for (Retry-After), in one notice at the top right; it goes after 10 s. */
(function () {
  const originalFetch = window.fetch;
  let hideTimer = null;
  function showRateNotice(seconds) {
    let notice = document.getElementById("cocoseg-rate-notice");
    if (!notice) {
      notice = document.createElement("div");
      notice.id = "cocoseg-rate-notice";
      notice.className = "alert alert-warning shadow-sm rate-notice";
      notice.setAttribute("role", "alert");
      document.body.appendChild(notice);
    }
    const wait = seconds ? " wait " + seconds + " s and" : "";
    notice.textContent = "Too many job starts from this browser: nothing was started;" + wait + " try again.";
    notice.style.display = "";
    clearTimeout(hideTimer);
    hideTimer = setTimeout(function () { notice.style.display = "none"; }, 10000);
  }
  window.fetch = function (input) {
    return originalFetch.apply(this, arguments).then(function (response) {
      const url = typeof input === "string" ? input : (input && input.url) || "";
      if (response.status === 429 && url.indexOf("_dash-update-component") !== -1) {
        showRateNotice(parseInt(response.headers.get("Retry-After"), 10) || 0);
      }
      return response;
    });
  };
})();
