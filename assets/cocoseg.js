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
