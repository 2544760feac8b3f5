/*
 * Événements emploi: a destructive action (cancelling a registration, an agency cancelling its
 * event) asks first. Without JavaScript, its button leads to a confirmation page of its own; with
 * it, the same question opens in a native modal <dialog> on the page (focus kept inside, Échap
 * closes it, the focus goes back to the button). The form marked data-confirm="ID" opens the
 * dialog ID; a submit button carrying data-confirmed (the dialog's « Oui ») goes through.
 */
(function () {
  "use strict";

  function enhance(form) {
    var dialog = document.getElementById(form.getAttribute("data-confirm"));
    if (!dialog || typeof dialog.showModal !== "function") {
      return; // An old browser: the confirmation page does the job.
    }
    form.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      if (submitter && submitter.hasAttribute("data-confirmed")) {
        return;
      }
      event.preventDefault();
      dialog.showModal();
    });
    dialog.querySelectorAll("[data-close]").forEach(function (button) {
      button.addEventListener("click", function () {
        dialog.close();
      });
    });
  }

  function start() {
    document.querySelectorAll("form[data-confirm]").forEach(enhance);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
