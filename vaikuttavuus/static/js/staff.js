// Staff pages: wide tables scroll sideways inside .table-wrap on small screens. Make each such
// region reachable and named for keyboard and screen-reader users (WCAG 2.1.1, 4.1.2).
(function () {
  "use strict";
  document.querySelectorAll(".table-wrap").forEach(function (wrap, index) {
    if (!wrap.hasAttribute("tabindex")) { wrap.setAttribute("tabindex", "0"); }
    if (!wrap.hasAttribute("role")) { wrap.setAttribute("role", "region"); }
    if (!wrap.hasAttribute("aria-label") && !wrap.hasAttribute("aria-labelledby")) {
      var caption = wrap.querySelector("caption");
      var heading = wrap.closest("section") && wrap.closest("section").querySelector("h2");
      var text = (caption && caption.textContent.trim()) || (heading && heading.textContent.trim())
        || (document.title + " " + (index + 1));
      wrap.setAttribute("aria-label", text);
    }
  });
})();

// Management summaries: the download buttons say what they will download. Their labels follow
// the chosen pilot, period and language (the buttons submit the form, so without JavaScript
// the file still matches the choices; only the label is then the one of the page load).
(function () {
  "use strict";
  document.querySelectorAll("form[data-download-form]").forEach(function (form) {
    function chosen(name) {
      var select = form.querySelector("select[name='" + name + "']");
      var option = select && select.options[select.selectedIndex];
      return option ? option.textContent.trim() : "";
    }
    function update() {
      var values = { pilot: chosen("pilot"), period: chosen("period"), language: chosen("lang_pdf") };
      form.querySelectorAll("[data-label-template]").forEach(function (button) {
        button.textContent = button.getAttribute("data-label-template").replace(
          /\{(pilot|period|language)\}/g, function (_match, key) { return values[key]; });
      });
    }
    form.addEventListener("change", update);
  });
})();
