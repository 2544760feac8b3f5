/*
 * The map beside the search results (Leaflet, static/vendor/leaflet): a pin per event of the
 * page that has a place, the search circle, tiles from the server the settings name
 * (MAP_TILES_URL). The list stays the way to the results: without JavaScript the map is never
 * shown, and when the tiles cannot load the pins and circle stay and a line says so.
 */
(function () {
  "use strict";

  var STORAGE_KEY = "evenements-carte";
  var FRANCE = [46.6, 2.4];

  function readData() {
    var node = document.getElementById("results-map-data");
    if (!node) {
      return null;
    }
    try {
      return JSON.parse(node.textContent);
    } catch (error) {
      return null;
    }
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text) {
      node.textContent = text;
    }
    return node;
  }

  function popupFor(pin) {
    var box = element("div", "map-popup");
    var title = element("p", "map-popup-title");
    var link = element("a", null, pin.title);
    link.href = pin.url;
    title.appendChild(link);
    box.appendChild(title);
    box.appendChild(element("p", null, pin.when + (pin.city ? " · " + pin.city : "")));
    if (pin.approximate) {
      box.appendChild(
        element("p", "map-popup-note", "Position approximative : le lieu est placé au centre de la commune.")
      );
    }
    return box;
  }

  function init() {
    var panel = document.getElementById("results-map-panel");
    var holder = document.getElementById("results-map");
    var area = document.getElementById("results-map-area");
    var toggle = panel ? panel.querySelector(".map-toggle") : null;
    var status = document.getElementById("results-map-status");
    var data = readData();
    if (!panel || !holder || !area || !toggle || !data || !window.L) {
      return;
    }
    var L = window.L;
    panel.hidden = false;
    document.querySelectorAll(".map-jump").forEach(function (node) {
      node.hidden = false;
    });

    var map = L.map(holder, {
      zoomControl: false,
      attributionControl: false,
      scrollWheelZoom: false,
      keyboard: true,
    });
    L.control.zoom({ zoomInTitle: "Zoom avant", zoomOutTitle: "Zoom arrière" }).addTo(map);
    L.control
      .attribution({ prefix: '<a href="https://leafletjs.com">Leaflet</a>' })
      .addTo(map);
    var tiles = L.tileLayer(data.tiles, { attribution: data.attribution, maxZoom: 18 });
    var failed = false;
    tiles.on("tileerror", function () {
      if (!failed) {
        failed = true;
        status.textContent =
          "Le fond de carte n'a pas pu être chargé : les repères restent, et la liste donne tous les résultats.";
      }
    });
    tiles.addTo(map);
    var layer = L.layerGroup().addTo(map);
    var approximateIcon = new L.Icon.Default({ className: "pin-approximate" });

    function draw(current) {
      layer.clearLayers();
      var points = [];
      var circle = null;
      if (current.circle) {
        circle = L.circle([current.circle.lat, current.circle.lon], {
          radius: current.circle.radius_m,
          interactive: false,
          color: "#0a5c6b",
          weight: 2,
          fillOpacity: 0.06,
        });
        layer.addLayer(circle);
      }
      current.pins.forEach(function (pin) {
        var label = pin.title + (pin.approximate ? " (position approximative)" : "");
        var options = { title: label, alt: label, keyboard: true };
        if (pin.approximate) {
          options.icon = approximateIcon;
        }
        var marker = L.marker([pin.lat, pin.lon], options);
        marker.bindPopup(popupFor(pin));
        layer.addLayer(marker);
        points.push([pin.lat, pin.lon]);
      });
      if (circle) {
        // From the centre and radius: the circle's own bounds need a map already in view.
        var centre = L.latLng(current.circle.lat, current.circle.lon);
        map.fitBounds(centre.toBounds(current.circle.radius_m * 2), { padding: [8, 8] });
      } else if (points.length) {
        // Room above each point for its pin (41 px tall, anchored at its tip).
        map.fitBounds(points, {
          paddingTopLeft: [30, 50],
          paddingBottomRight: [30, 10],
          maxZoom: 13,
        });
      } else {
        map.setView(FRANCE, 5);
      }
    }

    function setShown(shown) {
      area.hidden = !shown;
      toggle.setAttribute("aria-expanded", shown ? "true" : "false");
      toggle.textContent = shown ? "Masquer la carte" : "Afficher la carte";
      panel.classList.toggle("is-collapsed", !shown);
      try {
        window.localStorage.setItem(STORAGE_KEY, shown ? "on" : "off");
      } catch (error) {
        // Storage refused (private mode): the choice lasts for this page only.
      }
      if (shown) {
        map.invalidateSize();
        draw(readData() || data);
      }
    }

    toggle.addEventListener("click", function () {
      setShown(area.hidden);
    });
    // The live search (app.js) replaced the list and its map data: redraw.
    document.addEventListener("results:updated", function () {
      var fresh = readData();
      document.querySelectorAll(".map-jump").forEach(function (node) {
        node.hidden = false;
      });
      if (fresh && !area.hidden) {
        draw(fresh);
      }
    });
    var stored = null;
    try {
      stored = window.localStorage.getItem(STORAGE_KEY);
    } catch (error) {
      stored = null;
    }
    if (stored === "off") {
      setShown(false);
    } else {
      draw(data);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
