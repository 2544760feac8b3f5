/*
 * Événements emploi: small enhancements on top of pages that work without JavaScript.
 *
 * - The search filters update the results in place: the same /evenements?... page is fetched,
 *   its results section replaces ours, the address bar follows (history.replaceState) and the
 *   count is announced by the live region (role="status").
 * - On wide screens, the filter groups are open.
 * - A form shown again with errors puts the focus on its error summary, which is read at once.
 */
(function () {
  "use strict";

  var WIDE = "(min-width: 64em)";

  function focusErrorSummary() {
    var summary = document.querySelector(".error-summary");
    if (summary) {
      summary.focus();
    }
  }

  function openFiltersOnWideScreens(form) {
    if (!window.matchMedia || !window.matchMedia(WIDE).matches) {
      return;
    }
    form.querySelectorAll("details.filter-group").forEach(function (group) {
      group.open = true;
    });
  }

  function queryOf(form) {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (typeof value === "string" && value !== "") {
        params.append(key, value);
      }
    });
    return params.toString();
  }

  function announce(region, text) {
    // Emptying then filling the region makes screen readers read it even when the text is the
    // same as before (the same count for another filter).
    region.textContent = "";
    window.setTimeout(function () {
      region.textContent = text;
    }, 100);
  }

  function enhanceSearch(form) {
    var results = document.getElementById("results-list");
    var count = document.getElementById("results-count");
    var heading = document.getElementById("resultats");
    if (!results || !count || !window.fetch || !window.DOMParser) {
      return;
    }
    var controller = null;
    var timer = null;
    var lastQuery = queryOf(form);

    function update(moveFocus) {
      var query = queryOf(form);
      if (query === lastQuery && !moveFocus) {
        return;
      }
      var url = form.getAttribute("action") + (query ? "?" + query : "");
      if (controller) {
        controller.abort();
      }
      controller = window.AbortController ? new AbortController() : null;
      results.setAttribute("aria-busy", "true");
      fetch(url, {
        headers: { Accept: "text/html" },
        credentials: "same-origin",
        signal: controller ? controller.signal : undefined,
      })
        .then(function (response) {
          if (!response.ok) {
            // An error is shown beside its field: the page as a whole says it best.
            window.location.assign(url);
            return null;
          }
          return response.text();
        })
        .then(function (html) {
          if (html === null) {
            return;
          }
          var page = new DOMParser().parseFromString(html, "text/html");
          var newResults = page.getElementById("results-list");
          var newCount = page.getElementById("results-count");
          if (!newResults || !newCount) {
            window.location.assign(url);
            return;
          }
          results.innerHTML = newResults.innerHTML;
          results.removeAttribute("aria-busy");
          // The map (results-map.js) redraws from the new list's data.
          document.dispatchEvent(new CustomEvent("results:updated"));
          lastQuery = query;
          if (window.history && window.history.replaceState) {
            window.history.replaceState(null, "", url);
          }
          announce(count, newCount.textContent.trim());
          if (moveFocus && heading) {
            heading.focus();
          }
        })
        .catch(function (error) {
          if (error && error.name === "AbortError") {
            return;
          }
          window.location.assign(url);
        });
    }

    function showsErrors() {
      // A page shown with an error is replaced as a whole, so that the messages go away.
      return document.querySelector(".error-summary, .search-form [aria-invalid='true']") !== null;
    }

    function updateGroupCounts() {
      form.querySelectorAll("details.filter-group").forEach(function (group) {
        var boxes = group.querySelectorAll("input[type='checkbox']");
        if (!boxes.length) {
          return;
        }
        var chosen = group.querySelectorAll("input[type='checkbox']:checked").length;
        var summary = group.querySelector("summary");
        var badge = summary.querySelector(".count");
        if (!chosen) {
          if (badge) {
            badge.remove();
          }
          return;
        }
        if (!badge) {
          badge = document.createElement("span");
          badge.className = "count";
          summary.appendChild(document.createTextNode(" "));
          summary.appendChild(badge);
        }
        badge.textContent = "(" + chosen + (chosen > 1 ? " choisis)" : " choisi)");
      });
    }

    form.addEventListener("change", function (event) {
      var target = event.target;
      updateGroupCounts();
      if (showsErrors()) {
        return;
      }
      // Words and place are read when the person submits (Enter or the button), not on each
      // change of focus.
      if (target && (target.id === "q" || target.id === "near")) {
        return;
      }
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        update(false);
      }, 250);
    });
    form.addEventListener("submit", function (event) {
      if (showsErrors()) {
        return;
      }
      event.preventDefault();
      window.clearTimeout(timer);
      update(true);
    });
  }

  function init() {
    focusErrorSummary();
    var form = document.querySelector('form.search-form[data-live-search="true"]');
    if (form) {
      openFiltersOnWideScreens(form);
      enhanceSearch(form);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
