/*
 * The scan page: the phone's camera reads check-in QR codes, where the browser has a
 * BarcodeDetector (Chrome on Android, Edge, Samsung Internet). Elsewhere nothing changes: the
 * typed-code form works on its own, without JavaScript.
 *
 * A code read by the camera, like a typed one, is posted with the page's own form (and its
 * CSRF token), asking for JSON; the answer fills the live region (role="status"), which screen
 * readers announce. The same code seen again within a few seconds is not posted again: the QR
 * code is still in front of the camera.
 */
(function () {
  "use strict";

  var SAME_CODE_PAUSE_MS = 4000;
  var SCAN_EVERY_MS = 250;

  var form = document.querySelector("[data-scan-form]");
  var region = document.querySelector("[data-scan-result]");
  if (!form || !region || !window.fetch) {
    return;
  }
  var input = form.querySelector("input[name=code]");

  function show(answer) {
    region.className = "scan-result scan-" + answer.outcome;
    region.textContent = "";
    // Filled after a tick, so that the same answer twice is read twice.
    window.setTimeout(function () {
      var headline = document.createElement("p");
      headline.className = "scan-headline";
      headline.textContent = answer.headline;
      region.appendChild(headline);
      if (answer.name) {
        var name = document.createElement("p");
        name.className = "scan-name";
        name.textContent = answer.name;
        region.appendChild(name);
      }
      if (answer.detail) {
        var detail = document.createElement("p");
        detail.className = "scan-detail";
        detail.textContent = answer.detail;
        region.appendChild(detail);
      }
    }, 50);
  }

  function post(code) {
    var body = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (typeof value === "string") {
        body.append(key, value);
      }
    });
    body.set("code", code);
    return window
      .fetch(form.action, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
      .then(function (response) {
        if (!response.headers.get("content-type") || response.headers.get("content-type").indexOf("application/json") !== 0) {
          // Signed out, or anything unexpected: the plain form does it the long way.
          throw new Error("not json");
        }
        return response.json();
      })
      .then(show);
  }

  form.addEventListener("submit", function (event) {
    if (!input.value.trim()) {
      event.preventDefault();
      input.focus();
      return;
    }
    event.preventDefault();
    post(input.value).then(
      function () {
        input.value = "";
        input.focus();
      },
      function () {
        form.submit();
      }
    );
  });

  var camera = document.querySelector("[data-scan-camera]");
  if (!camera || !("BarcodeDetector" in window) || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return;
  }
  var start = camera.querySelector("[data-scan-start]");
  var stop = camera.querySelector("[data-scan-stop]");
  var video = camera.querySelector("[data-scan-video]");
  var help = camera.querySelector("[data-scan-help]");
  var detector = null;
  var stream = null;
  var timer = null;
  var last = { code: null, at: 0 };

  function stopCamera() {
    if (timer) {
      window.clearInterval(timer);
      timer = null;
    }
    if (stream) {
      stream.getTracks().forEach(function (track) {
        track.stop();
      });
      stream = null;
    }
    video.hidden = true;
    help.hidden = true;
    stop.hidden = true;
    start.hidden = false;
    start.focus();
  }

  function tick() {
    if (!stream || video.readyState < 2) {
      return;
    }
    detector.detect(video).then(function (codes) {
      if (!codes.length) {
        return;
      }
      var code = codes[0].rawValue;
      var now = Date.now();
      if (code === last.code && now - last.at < SAME_CODE_PAUSE_MS) {
        return;
      }
      last = { code: code, at: now };
      post(code).catch(function () {
        show({ outcome: "closed", headline: "Erreur de connexion", detail: "Réessayez, ou tapez le code." });
      });
    });
  }

  window.BarcodeDetector.getSupportedFormats().then(function (formats) {
    if (formats.indexOf("qr_code") === -1) {
      return;
    }
    detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    camera.hidden = false;
    start.addEventListener("click", function () {
      navigator.mediaDevices
        .getUserMedia({ video: { facingMode: "environment" }, audio: false })
        .then(function (media) {
          stream = media;
          video.srcObject = media;
          video.hidden = false;
          help.hidden = false;
          start.hidden = true;
          stop.hidden = false;
          return video.play();
        })
        .then(function () {
          timer = window.setInterval(tick, SCAN_EVERY_MS);
        })
        .catch(function () {
          stopCamera();
          show({
            outcome: "closed",
            headline: "Caméra indisponible",
            detail: "Autorisez la caméra pour ce site, ou tapez le code ci-dessous.",
          });
        });
    });
    stop.addEventListener("click", stopCamera);
  });
})();
