// Imports page: send the file in the background and show a progress bar — how much of the file
// has been sent, then "checking and storing" until the server has the report ready. Without
// JavaScript (or on any problem) the form is sent the usual way.
(function () {
  "use strict";
  var form = document.getElementById("import-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) { return; }
  var box = form.querySelector(".import-progress");
  var bar = box && box.querySelector("progress");
  var label = box && box.querySelector(".progress-text");
  var button = form.querySelector("[type=submit]");
  var plain = false;

  function say(key) { label.textContent = label.getAttribute("data-" + key); }

  function sendPlainly() {
    plain = true;
    form.submit();
  }

  form.addEventListener("submit", function (event) {
    if (plain || !box) { return; }
    event.preventDefault();
    var request = new XMLHttpRequest();
    request.open("POST", form.getAttribute("action") || window.location.href);
    request.setRequestHeader("Accept", "application/json");
    box.hidden = false;
    bar.value = 0;
    say("uploading");
    if (button) { button.disabled = true; }
    request.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) { bar.value = Math.round(100 * e.loaded / e.total); }
    });
    request.upload.addEventListener("load", function () {
      bar.removeAttribute("value");  // indeterminate while the server checks and stores
      say("checking");
    });
    request.addEventListener("load", function () {
      var answer = null;
      try { answer = JSON.parse(request.responseText); } catch (ignore) { answer = null; }
      if (request.status === 200 && answer && answer.redirect) {
        window.location.assign(answer.redirect);
      } else {
        sendPlainly();  // shows the form's own messages
      }
    });
    request.addEventListener("error", function () {
      say("failed");
      if (button) { button.disabled = false; }
    });
    request.send(new FormData(form));
  });
})();
