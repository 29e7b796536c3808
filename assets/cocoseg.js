/* cocoseg browser-side helpers: things that must not wait for the server. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  cocoseg: {
    /* Segment page: the mask layer's opacity follows the slider without a round trip. */
    setOpacity: function (value) {
      return { opacity: value === undefined || value === null ? 0.55 : value };
    },
  },
});
