// Patient pages: show dependent questions as answers change, stop double sends, keep answers
// not yet sent across a language or text-size switch, and move focus to the error summary.
// Everything works without this script; it only makes the page friendlier.
(function () {
  "use strict";

  var UNSENT_KEY = "vaikuttavuus-unsent-answers";

  function answersOf(form, itemId) {
    var values = [];
    form.querySelectorAll('[name="' + itemId + '"]').forEach(function (input) {
      if ((input.type === "radio" || input.type === "checkbox")) {
        if (input.checked) { values.push(input.value); }
      } else if (input.value.trim() !== "") {
        values.push(input.value.trim().replace(",", "."));
      }
    });
    return values;
  }

  function holds(condition, values) {
    if (condition.operator === "exists") {
      var wanted = condition.value === null ? true : Boolean(condition.value);
      return (values.length > 0) === wanted;
    }
    if (values.length === 0) { return false; }
    var expected = condition.value === true ? "1" : condition.value === false ? "0" : String(condition.value);
    if (condition.operator === "=" || condition.operator === "!=") {
      var hit = values.some(function (v) { return v === expected || Number(v) === Number(expected); });
      return condition.operator === "=" ? hit : !hit;
    }
    var left = Number(values[0]);
    var right = Number(expected);
    if (isNaN(left) || isNaN(right)) { return false; }
    switch (condition.operator) {
      case ">": return left > right;
      case ">=": return left >= right;
      case "<": return left < right;
      case "<=": return left <= right;
    }
    return false;
  }

  function refresh(form) {
    form.querySelectorAll("[data-enable-when]").forEach(function (block) {
      var rules = JSON.parse(block.getAttribute("data-enable-when"));
      var local = rules.filter(function (r) { return form.querySelector('[name="' + r.item + '"]'); });
      if (local.length !== rules.length) { return; }  // depends on another page: decided by the server
      var results = rules.map(function (r) { return holds(r, answersOf(form, r.item)); });
      var behavior = rules.length ? rules[0].behavior : "all";
      var show = behavior === "any" ? results.some(Boolean) : results.every(Boolean);
      block.hidden = !show;
    });
  }

  // -- answers not yet sent survive the language and text-size links ------------------------
  // Those links load the same page again; without this, choices made on the page but not yet
  // sent would be lost. They are kept in this tab's sessionStorage only for that one reload.

  function formState(form) {
    var state = [];
    form.querySelectorAll("input, textarea, select").forEach(function (el) {
      if (!el.name || el.type === "hidden" || el.type === "submit") { return; }
      if (el.type === "radio" || el.type === "checkbox") {
        state.push([el.name, el.value, el.checked]);
      } else {
        state.push([el.name, el.value, null]);
      }
    });
    return state;
  }

  function restoreState(form, state) {
    var byKey = {};
    state.forEach(function (entry) { byKey[entry[0] + "\u0000" + (entry[2] === null ? "" : entry[1])] = entry; });
    form.querySelectorAll("input, textarea, select").forEach(function (el) {
      if (!el.name || el.type === "hidden" || el.type === "submit") { return; }
      if (el.type === "radio" || el.type === "checkbox") {
        var entry = byKey[el.name + "\u0000" + el.value];
        if (entry) { el.checked = entry[2]; }
      } else {
        var text = byKey[el.name + "\u0000"];
        if (text !== undefined) { el.value = text[1]; }
      }
    });
  }

  function storage() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }

  function keepUnsentAnswers(form) {
    var store = storage();
    if (!store) { return; }
    var saved = store.getItem(UNSENT_KEY);
    store.removeItem(UNSENT_KEY);
    if (saved) {
      try {
        var data = JSON.parse(saved);
        if (data.path === window.location.pathname) {
          restoreState(form, data.state);
          form.dataset.changed = "1";
        }
      } catch (e) { /* a damaged entry is ignored */ }
    }
    document.querySelectorAll("a.keep-answers").forEach(function (link) {
      link.addEventListener("click", function () {
        if (form.dataset.changed !== "1") { return; }
        var target = new URL(link.href, window.location.href);
        if (target.pathname !== window.location.pathname) { return; }
        try {
          store.setItem(UNSENT_KEY, JSON.stringify({ path: target.pathname, state: formState(form) }));
        } catch (e) { /* storage full or blocked: the link still works */ }
      });
    });
  }

  document.querySelectorAll("form.questionnaire").forEach(function (form) {
    keepUnsentAnswers(form);
    refresh(form);
    var changed = function () { form.dataset.changed = "1"; refresh(form); };
    form.addEventListener("change", changed);
    form.addEventListener("input", changed);
  });

  // -- one click sends once -----------------------------------------------------------------
  // Disable the buttons after the first submit (the server is idempotent anyway, so a retry
  // after a network error is safe).
  // The review page has the same send form above and below the answers: sending one counts
  // for both.
  var sendForms = document.querySelectorAll("form.submit-form");
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      if (form.dataset.sent === "1") { event.preventDefault(); return; }
      form.dataset.sent = "1";
      if (form.classList.contains("submit-form")) {
        sendForms.forEach(function (other) {
          other.dataset.sent = "1";
          setTimeout(function () {
            other.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
          }, 0);
        });
      }
      if (submitter && submitter.name) {
        var hidden = document.createElement("input");
        hidden.type = "hidden";
        hidden.name = submitter.name;
        hidden.value = submitter.value;
        form.appendChild(hidden);
      }
      setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
      }, 0);
    });
  });

  // A page restored from the back-forward cache (e.g. the review page after sending) would
  // show a stale form with its buttons disabled: ask the server for it again, with a GET even
  // when the page was the answer to a POST (no "resend the form?" question).
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { window.location.replace(window.location.href); }
  });

  // -- errors -------------------------------------------------------------------------------
  var summary = document.getElementById("error-summary");
  if (summary) {
    summary.focus();
    // A link in the summary moves focus to the question's first control and shows the whole
    // question (its text is above the control).
    summary.querySelectorAll('a[href^="#"]').forEach(function (link) {
      link.addEventListener("click", function (event) {
        var control = document.getElementById(link.getAttribute("href").slice(1));
        if (!control) { return; }
        event.preventDefault();
        var question = control.closest(".question") || control;
        question.scrollIntoView({ block: "start" });
        control.focus({ preventScroll: true });
      });
    });
  }
})();
