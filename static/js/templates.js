/* The WhatsApp template builder (whatsapp/templates/whatsapp/templates/form.html).

   Insert field   <select data-insert-select data-insert-target="id_body">: choosing a field inserts
                  its {{placeholder}} at the cursor of the target input, then fires keyup so htmx
                  refreshes the preview. Without JavaScript the options still show the placeholders
                  to type.
   Show when      [data-show-when="header_type=document,image"]: shown only while the named radio or
                  select has one of the values. Without JavaScript everything is shown.
   Module switch  <select data-module-switch> on a new template reloads the page for that module, so
                  the field lists match it.
*/
(function () {
  "use strict";

  function insertAtCursor(input, text) {
    var start = typeof input.selectionStart === "number" ? input.selectionStart : input.value.length;
    var end = typeof input.selectionEnd === "number" ? input.selectionEnd : input.value.length;
    input.value = input.value.slice(0, start) + text + input.value.slice(end);
    var caret = start + text.length;
    input.focus();
    if (input.setSelectionRange) input.setSelectionRange(caret, caret);
    input.dispatchEvent(new Event("input", { bubbles: true }));
    input.dispatchEvent(new KeyboardEvent("keyup", { bubbles: true }));
  }

  function currentValue(form, name) {
    var checked = form.querySelector('[name="' + name + '"]:checked');
    if (checked) return checked.value;
    var field = form.querySelector('select[name="' + name + '"], input[name="' + name + '"]:not([type="radio"])');
    return field ? field.value : "";
  }

  function refreshVisibility(form) {
    Array.prototype.forEach.call(form.querySelectorAll("[data-show-when]"), function (el) {
      var rule = el.getAttribute("data-show-when").split("=");
      var values = rule[1].split(",");
      el.hidden = values.indexOf(currentValue(form, rule[0])) === -1;
    });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLElement)) return;
    if (target.matches("select[data-insert-select]")) {
      var input = document.getElementById(target.getAttribute("data-insert-target"));
      if (input && target.value) insertAtCursor(input, target.value);
      target.value = "";
      return;
    }
    var form = target.closest("form");
    if (target.matches("select[data-module-switch]") && form && form.hasAttribute("data-new")) {
      window.location.search = "?module=" + encodeURIComponent(target.value);
      return;
    }
    if (form && form.querySelector("[data-show-when]")) refreshVisibility(form);
  });

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("form"), function (form) {
      if (form.querySelector("[data-show-when]")) refreshVisibility(form);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
