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
