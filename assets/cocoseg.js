/* cocoseg browser-side helpers: things that must not wait for the server. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  cocoseg: {
    /* Segment page: the mask layer's opacity follows the slider without a round trip. */
    setOpacity: function (value) {
      return { opacity: value === undefined || value === null ? 0.55 : value };
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

/* Explore page: arrow keys turn the image browser's pages (not while typing in a field). */
document.addEventListener("keydown", function (event) {
  if (window.location.pathname !== "/explore" || event.altKey || event.ctrlKey || event.metaKey) return;
  const target = event.target;
  if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
  const button = { ArrowLeft: "explore-previous", ArrowRight: "explore-next" }[event.key];
  const element = button && document.getElementById(button);
  if (element) {
    element.click();
    event.preventDefault();
  }
});

/* Review: J / K (or the arrow keys) move along the queue, Enter opens the focused image in
   Annotate (a link), N opens the first image not corrected yet. */
document.addEventListener("keydown", function (event) {
  if (window.location.pathname !== "/review" || event.altKey || event.ctrlKey || event.metaKey) return;
  const target = event.target;
  const typing = target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  if (typing && !/^(checkbox|radio)$/.test(target.type)) return;
  const cards = Array.from(document.querySelectorAll("#review-queue .review-card"));
  if (!cards.length) return;
  const key = event.key.toLowerCase();
  const step = { j: 1, arrowdown: 1, arrowright: 1, k: -1, arrowup: -1, arrowleft: -1 }[key];
  if (step) {
    const index = cards.indexOf(document.activeElement);
    const next = index < 0 ? 0 : Math.max(0, Math.min(cards.length - 1, index + step));
    cards[next].focus();
    cards[next].scrollIntoView({ block: "nearest" });
    event.preventDefault();
  } else if (key === "n") {
    const first = cards.find(function (card) { return !card.classList.contains("review-done"); });
    if (first) first.click();
    event.preventDefault();
  }
});

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

/* Annotate: hands stay on the keys. 1-9 class, E eraser, [ ] brush, P L R H tools, Ctrl+Z undo,
   Space preview, Ctrl+S save, N next in the review queue (not while typing in a field). */
function cocosegCanvasButton(match) {
  return Array.from(document.querySelectorAll(".annotate-canvas button")).find(match);
}
document.addEventListener("keydown", function (event) {
  if (window.location.pathname !== "/annotate") return;
  const target = event.target;
  if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName) && target.type !== "radio")) return;
  const setProps = window.dash_clientside && window.dash_clientside.set_props;
  const key = event.key;
  let handled = true;
  if ((event.ctrlKey || event.metaKey) && key.toLowerCase() === "s") {
    const save = document.getElementById("annotate-save");
    if (save) save.click();
  } else if ((event.ctrlKey || event.metaKey) && key.toLowerCase() === "z") {
    const undo = cocosegCanvasButton(function (button) { return /undo/i.test(button.title || "") || /undo/i.test(button.innerHTML); });
    if (undo) undo.click();
  } else if (event.ctrlKey || event.metaKey || event.altKey) {
    handled = false;
  } else if (/^[1-9]$/.test(key) || key.toLowerCase() === "e") {
    const radios = document.querySelectorAll("#annotate-class input[type=radio]");
    const radio = key.toLowerCase() === "e" ? radios[radios.length - 1] : radios[parseInt(key, 10) - 1];
    if (radio) radio.click();
  } else if ((key === "[" || key === "]") && setProps) {
    const slider = document.querySelector("#annotate-brush [role=slider]");
    const current = slider ? parseInt(slider.getAttribute("aria-valuenow"), 10) : 12;
    setProps("annotate-brush", { value: Math.max(1, Math.min(60, current + (key === "]" ? 2 : -2))) });
  } else if ({ p: 1, l: 1, r: 1, h: 1 }[key.toLowerCase()] && setProps) {
    setProps("annotate-tool", { value: { p: "pencil", l: "line", r: "rectangle", h: "pan" }[key.toLowerCase()] });
  } else if (key === " ") {
    const preview = cocosegCanvasButton(function (button) { return button.textContent.trim() === "Preview"; });
    if (preview) preview.click();
  } else if (key.toLowerCase() === "n") {
    const next = document.getElementById("annotate-next");
    if (next) next.click();
  } else {
    handled = false;
  }
  if (handled) event.preventDefault();
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
