// Runs in <head> before the page paints: apply the theme the user chose, if any;
// without a choice the stylesheet follows prefers-color-scheme.
(function () {
  try {
    var theme = localStorage.getItem("switchyard-theme");
    if (theme === "light" || theme === "dark") {
      document.documentElement.dataset.theme = theme;
    }
  } catch (e) { /* storage may be disabled: keep the system theme */ }
})();
