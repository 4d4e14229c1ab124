// Patient pages: show dependent questions as answers change, and stop double sends.
// Everything works without this script; it only makes the page friendlier.
(function () {
  "use strict";

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

  document.querySelectorAll("form.questionnaire").forEach(function (form) {
    refresh(form);
    form.addEventListener("change", function () { refresh(form); });
    form.addEventListener("input", function () { refresh(form); });
  });

  // One click sends once: disable the buttons after the first submit (the server is
  // idempotent anyway, so a retry after a network error is safe).
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      if (form.dataset.sent === "1") { event.preventDefault(); return; }
      form.dataset.sent = "1";
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

  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
})();
