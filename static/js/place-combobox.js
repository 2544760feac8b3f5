/*
 * The place field of the search forms as an ARIA 1.2 combobox (an input with a listbox
 * popup), fed by GET /api/v1/places. Keyboard and ARIA state come from @github/combobox-nav
 * (static/vendor); this file only fetches the suggestions and draws them. Without JavaScript,
 * or when the request fails, the field stays the plain text input it is in the HTML.
 */
import Combobox from "../vendor/combobox-nav/index.js";

const DELAY_MS = 150;

function enhance(input) {
  const field = input.closest(".field") || input.parentElement;
  const list = document.createElement("ul");
  list.id = input.id + "-suggestions";
  list.className = "combobox-list";
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", "Lieux proposés");
  list.hidden = true;
  const status = document.createElement("p");
  status.className = "visually-hidden";
  status.setAttribute("role", "status");
  field.classList.add("has-combobox");
  input.insertAdjacentElement("afterend", list);
  field.appendChild(status);
  // The browser's own suggestions would cover ours.
  input.setAttribute("autocomplete", "off");

  const combobox = new Combobox(input, list, { tabInsertsSuggestions: false });
  let open = false;
  let timer = null;
  let controller = null;
  let asked = "";

  function close() {
    if (open) {
      combobox.stop();
      open = false;
    }
    list.hidden = true;
    list.replaceChildren();
  }

  function show(items) {
    list.replaceChildren(
      ...items.map((item, index) => {
        const option = document.createElement("li");
        option.id = list.id + "-" + index;
        option.setAttribute("role", "option");
        option.dataset.value = item.value;
        option.textContent = item.label;
        return option;
      }),
    );
    if (!items.length) {
      close();
      status.textContent = "";
      return;
    }
    list.hidden = false;
    if (!open) {
      combobox.start();
      open = true;
    } else {
      combobox.clearSelection();
    }
    const count = items.length;
    status.textContent =
      count + (count > 1 ? " lieux proposés" : " lieu proposé") +
      " : flèche bas pour les parcourir, Entrée pour choisir.";
  }

  function suggest() {
    const text = input.value.trim();
    if (text === asked) {
      return;
    }
    asked = text;
    if (controller) {
      controller.abort();
    }
    if (text.length < 2) {
      close();
      return;
    }
    controller = new AbortController();
    fetch("/api/v1/places?" + new URLSearchParams({ q: text }), {
      headers: { Accept: "application/json" },
      signal: controller.signal,
    })
      .then((response) => (response.ok ? response.json() : { items: [] }))
      .then((body) => {
        // An answer to an older text is dropped.
        if (input.value.trim() === text && document.activeElement === input) {
          show(body.items || []);
        }
      })
      .catch(() => {
        // Offline or aborted: the plain field still works.
      });
  }

  input.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(suggest, DELAY_MS);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && open) {
      // First Escape closes the list and keeps the text (ARIA APG).
      event.preventDefault();
      close();
    } else if (event.key === "ArrowDown" && !open && input.value.trim().length >= 2) {
      asked = "";
      suggest();
    }
  });
  list.addEventListener("combobox-commit", (event) => {
    const option = event.target.closest('[role="option"]');
    if (!option) {
      return;
    }
    input.value = option.dataset.value;
    asked = input.value.trim();
    status.textContent = "Lieu choisi : " + option.textContent + ".";
    close();
    input.focus();
  });
  // Options are chosen with a click, not a focus change: keep the focus in the input.
  list.addEventListener("mousedown", (event) => event.preventDefault());
  input.addEventListener("blur", () => close());
}

document.querySelectorAll("form.search-form input[name='near']").forEach(enhance);
