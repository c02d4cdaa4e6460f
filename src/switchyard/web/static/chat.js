// The chat playground: streams /api/v1/chat/completions over fetch and parses its SSE.
(function () {
  "use strict";
  var KEY_STORAGE = "switchyard-inference-key";
  var form = document.getElementById("chat-form");
  var keyInput = document.getElementById("api-key");
  var message = document.getElementById("message");
  var compare = document.getElementById("compare");
  var stopButton = document.getElementById("stop");
  var sendButton = document.getElementById("send");
  var errorBox = document.getElementById("chat-error");
  var histories = { 1: [], 2: [] };
  var controllers = [];

  try { keyInput.value = sessionStorage.getItem(KEY_STORAGE) || ""; } catch (e) { /* none */ }
  keyInput.addEventListener("change", function () {
    try { sessionStorage.setItem(KEY_STORAGE, keyInput.value.trim()); } catch (e) { /* none */ }
  });
  compare.addEventListener("change", function () {
    document.getElementById("pane-2").hidden = !compare.checked;
  });
  message.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  document.getElementById("clear").addEventListener("click", function () {
    [1, 2].forEach(function (i) {
      histories[i] = [];
      document.getElementById("transcript-" + i).replaceChildren();
      document.getElementById("status-" + i).textContent = "";
    });
  });
  stopButton.addEventListener("click", function () {
    controllers.forEach(function (c) { c.abort(); });
  });

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function number(id) {
    var value = document.getElementById(id).value;
    return value === "" ? undefined : Number(value);
  }

  function addTurn(pane, role, text) {
    var item = document.createElement("li");
    item.className = "turn turn-" + role;
    var who = document.createElement("span");
    who.className = "role";
    who.textContent = role === "user" ? "You" : "Assistant";
    var body = document.createElement("div");
    body.className = "content";
    body.textContent = text;
    item.append(who, body);
    document.getElementById("transcript-" + pane).append(item);
    return body;
  }

  // Server-sent events: events end with a blank line; "data:" lines carry JSON, lines
  // starting with ":" are keep-alive comments.
  function parseEvents(buffer, onData) {
    buffer = buffer.replace(/\r\n/g, "\n");
    var events = buffer.split("\n\n");
    var rest = events.pop();
    events.forEach(function (event) {
      var data = event.split("\n")
        .filter(function (line) { return line.indexOf("data:") === 0; })
        .map(function (line) { return line.slice(5).replace(/^ /, ""); })
        .join("\n");
      if (data) { onData(data); }
    });
    return rest;
  }

  async function run(pane, key, payload) {
    var history = histories[pane];
    var output = addTurn(pane, "assistant", "");
    output.setAttribute("data-streaming", "true");
    var status = document.getElementById("status-" + pane);
    var controller = new AbortController();
    controllers.push(controller);
    var started = performance.now();
    var firstToken = null;
    var text = "";
    status.textContent = "Waiting for the first token…";
    try {
      var response = await fetch("/api/v1/chat/completions", {
        method: "POST",
        signal: controller.signal,
        headers: {
          "Authorization": "Bearer " + key,
          "Content-Type": "application/json",
          "HTTP-Referer": location.origin + "/chat",
          "X-OpenRouter-Title": "Switchyard Chat",
        },
        body: JSON.stringify(Object.assign({}, payload, {
          model: document.getElementById("model-" + pane).value,
          messages: payload.messages.concat(history),
        })),
      });
      if (!response.ok) {
        var problem = await response.json().catch(function () { return {}; });
        throw new Error((problem.error && problem.error.message) || ("HTTP " + response.status));
      }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      var usage = null;
      var failure = null;
      for (;;) {
        var chunk = await reader.read();
        if (chunk.done) { break; }
        buffer = parseEvents(buffer + decoder.decode(chunk.value, { stream: true }), function (data) {
          if (data === "[DONE]") { return; }
          var event = JSON.parse(data);
          if (event.error) { failure = event.error.message || "The stream failed"; return; }
          if (event.usage) { usage = event.usage; }
          var choice = event.choices && event.choices[0];
          var delta = choice && choice.delta && choice.delta.content;
          if (delta) {
            if (firstToken === null) { firstToken = performance.now(); }
            text += delta;
            output.textContent = text;
            status.textContent = "Streaming…";
          }
        });
      }
      if (failure) { throw new Error(failure); }
      history.push({ role: "assistant", content: text });
      var seconds = ((performance.now() - started) / 1000).toFixed(2);
      var latency = firstToken === null ? "—" : ((firstToken - started) / 1000).toFixed(2) + " s";
      status.textContent = "Done in " + seconds + " s · first token " + latency +
        (usage ? " · " + usage.prompt_tokens + " prompt + " + usage.completion_tokens + " completion tokens" : "");
    } catch (error) {
      status.textContent = error.name === "AbortError" ? "Stopped." : "Error: " + error.message;
      if (error.name !== "AbortError") { output.classList.add("failed"); }
    } finally {
      output.removeAttribute("data-streaming");
    }
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    showError("");
    var key = keyInput.value.trim();
    var text = message.value.trim();
    if (!key) { showError("Paste an inference API key first."); keyInput.focus(); return; }
    if (!text) { showError("Write a message first."); message.focus(); return; }
    try { sessionStorage.setItem(KEY_STORAGE, key); } catch (e) { /* none */ }
    var system = document.getElementById("system").value.trim();
    var payload = {
      stream: true,
      temperature: number("temperature"),
      max_tokens: number("max-tokens"),
      top_p: number("top-p"),
      messages: system ? [{ role: "system", content: system }] : [],
    };
    var panes = compare.checked ? [1, 2] : [1];
    panes.forEach(function (pane) {
      addTurn(pane, "user", text);
      histories[pane].push({ role: "user", content: text });
    });
    message.value = "";
    sendButton.disabled = true;
    stopButton.disabled = false;
    controllers = [];
    await Promise.all(panes.map(function (pane) { return run(pane, key, payload); }));
    sendButton.disabled = false;
    stopButton.disabled = true;
    message.focus();
  });
})();
