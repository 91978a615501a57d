// The playground: GET /v1/models for the model card, POST /predict for the texts.
// An external file with no inline handlers and no eval, so the page runs under
// "script-src 'self'"; text goes into the page through textContent only, never as HTML.
(function () {
  "use strict";

  var root = document.body.dataset.root || "";
  var byId = function (id) { return document.getElementById(id); };
  var form = byId("predict-form");
  var keyRow = byId("key-row");
  var keyInput = byId("api-key");
  var errorBox = byId("error");
  var results = byId("results");
  var modelLoaded = false;

  function headers(json) {
    var h = { Accept: "application/json" };
    if (json) h["Content-Type"] = "application/json";
    var key = keyInput.value.trim();
    if (key) h.Authorization = "Bearer " + key;
    return h;
  }

  async function readJson(resp) {
    try {
      return await resp.json();
    } catch (e) {
      return { error: "the server answered " + resp.status + " without a JSON body", error_type: "unknown" };
    }
  }

  function needKey(message) {
    keyRow.hidden = false;
    keyInput.focus();
    return message;
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  async function loadModel() {
    var status = byId("model-status");
    var section = byId("model");
    try {
      var resp = await fetch(root + "/v1/models", { headers: headers(false) });
      var body = await readJson(resp);
      if (resp.status === 401) {
        section.dataset.state = "locked";
        status.textContent = needKey("This server needs an API key: enter it below to see the model and classify.");
        return;
      }
      if (!resp.ok) {
        section.dataset.state = "error";
        status.textContent = "Model not available: " + body.error + " (" + body.error_type + ")";
        return;
      }
      var info = body.models[0];
      byId("model-name").textContent = info.name;
      byId("model-version").textContent = String(info.version);
      byId("model-dtype").textContent = info.dtype;
      byId("model-layout").textContent = info.layout || "padded";
      byId("model-device").textContent = info.device;
      byId("model-max-length").textContent = info.max_length + " tokens";
      section.dataset.state = "ready";
      status.textContent = "";
      modelLoaded = true;
    } catch (e) {
      section.dataset.state = "error";
      status.textContent = "Cannot reach the server: " + e.message;
    }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function percent(p) {
    return (100 * p).toFixed(1) + "%";
  }

  function renderPrediction(text, prediction) {
    var item = el("li", "result");
    item.dataset.label = prediction.label;
    item.appendChild(el("p", "text", text));
    var verdict = el("p", "verdict");
    verdict.appendChild(el("strong", "label", prediction.label));
    verdict.appendChild(el("span", "score", percent(prediction.score)));
    if (prediction.truncated) {
      verdict.appendChild(el("span", "badge truncated", "truncated at the token limit"));
    }
    if (prediction.windows > 1) {
      verdict.appendChild(el("span", "badge windows", prediction.windows + " windows"));
    }
    item.appendChild(verdict);
    var bars = el("div", "bars");
    Object.keys(prediction.probabilities).forEach(function (label) {
      var p = prediction.probabilities[label];
      var row = el("div", "bar");
      row.dataset.label = label;
      row.appendChild(el("span", "bar-label", label));
      var track = el("span", "bar-track");
      var fill = el("span", "bar-fill");
      fill.style.width = percent(p); // CSSOM, not a style attribute: allowed by "style-src 'self'"
      track.appendChild(fill);
      row.appendChild(track);
      row.appendChild(el("span", "bar-value", percent(p)));
      bars.appendChild(row);
    });
    item.appendChild(bars);
    return item;
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    errorBox.hidden = true;
    var texts = byId("texts").value.split("\n").map(function (line) { return line.trim(); })
      .filter(function (line) { return line.length > 0; });
    if (texts.length === 0) {
      showError("Type at least one text (one per line).");
      return;
    }
    var payload = { texts: texts };
    var truncation = byId("truncation").value;
    if (truncation) payload.truncation = truncation;
    var button = byId("submit");
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      var resp = await fetch(root + "/predict", {
        method: "POST", headers: headers(true), body: JSON.stringify(payload),
      });
      var body = await readJson(resp);
      if (!resp.ok) {
        var message = body.error + " (" + resp.status + " " + body.error_type + ")";
        showError(resp.status === 401 ? needKey(message) : message);
        return;
      }
      if (!modelLoaded) loadModel(); // the key that just worked opens the model card too
      results.replaceChildren();
      body.predictions.forEach(function (prediction, i) {
        results.appendChild(renderPrediction(texts[i], prediction));
      });
      var meta = byId("answer-meta");
      meta.textContent = body.model.name + " version " + body.model.version + " · request " + body.request_id;
      meta.hidden = false;
      results.dataset.count = String(body.predictions.length);
    } catch (e) {
      showError("Cannot reach the server: " + e.message);
    } finally {
      button.disabled = false;
      form.removeAttribute("aria-busy");
    }
  });

  loadModel();
})();
