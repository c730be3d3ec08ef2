/* Document pages: the line items editor (add / remove lines, live totals), a payment's
   "amount to apply" totals, confirmations on dangerous buttons, and open "Show details" kept
   open when the Comments & History card refreshes.
   The server recomputes every total; these figures only help while typing. */
(function () {
  "use strict";

  function parseAmount(value) {
    var text = String(value || "").replace(/[,\s]/g, "");
    if (text === "") return 0;
    var number = Number(text);
    return isFinite(number) ? number : NaN;
  }

  function cents(value) {
    // Half up, as the server rounds (Decimal ROUND_HALF_UP); EPSILON absorbs binary noise.
    return Math.round((value + Number.EPSILON) * 100) / 100;
  }

  function currencyOf(form) {
    var input = form.querySelector("[data-currency-input]");
    if (input && /^[A-Za-z]{3}$/.test(input.value.trim())) return input.value.trim().toUpperCase();
    var select = form.querySelector("[data-contact-select]");
    var option = select && select.options[select.selectedIndex];
    if (option && option.dataset.currency) return option.dataset.currency;
    return form.dataset.currency || "USD";
  }

  function formatter(form) {
    var currency = currencyOf(form);
    var input = form.querySelector("[data-currency-input]");
    if (input) input.placeholder = currency;
    try {
      return new Intl.NumberFormat(form.dataset.locale || undefined, { style: "currency", currency: currency });
    } catch (error) {
      return { format: function (n) { return currency + " " + n.toFixed(2); } };
    }
  }

  function show(form, name, text) {
    var cell = form.querySelector('[data-total="' + name + '"]');
    if (cell) cell.textContent = text;
  }

  function recalcLines(form, money) {
    var rows = form.querySelectorAll("[data-line-rows] [data-line-row]");
    if (!rows.length) return;
    var subtotal = 0, tax = 0;
    rows.forEach(function (row) {
      var removed = row.querySelector('input[name$="-DELETE"]');
      var cell = row.querySelector("[data-line-amount]");
      var quantity = parseAmount(row.querySelector("[data-line-quantity]").value);
      var rate = parseAmount(row.querySelector("[data-line-rate]").value);
      var percent = parseAmount(row.querySelector("[data-line-tax]").value);
      if (isNaN(quantity) || isNaN(rate) || isNaN(percent)) {
        if (cell) cell.textContent = "—";
        return;
      }
      var amount = cents(quantity * rate);
      if (cell) cell.textContent = money.format(amount);
      if (removed && removed.checked) return;
      subtotal += amount;
      tax += cents((amount * percent) / 100);
    });
    show(form, "subtotal", money.format(cents(subtotal)));
    show(form, "tax", money.format(cents(tax)));
    show(form, "total", money.format(cents(subtotal + tax)));
  }

  function recalcPayment(form, money) {
    var amountInput = form.querySelector("[data-payment-amount]");
    if (!amountInput) return;
    var amount = parseAmount(amountInput.value) || 0;
    var applied = 0;
    form.querySelectorAll("[data-apply]").forEach(function (input) {
      var value = parseAmount(input.value);
      if (!isNaN(value)) applied += value;
    });
    show(form, "amount", money.format(cents(amount)));
    show(form, "applied", money.format(cents(applied)));
    var excess = cents(amount - applied);
    show(form, "excess", money.format(excess));
    var row = form.querySelector('[data-total="excess"]');
    if (row) row.classList.toggle("negative", excess < 0);
  }

  function recalc(form) {
    var money = formatter(form);
    recalcLines(form, money);
    recalcPayment(form, money);
  }

  function addLine(form) {
    var template = form.querySelector("template[data-line-template]");
    var total = form.querySelector('input[name$="-TOTAL_FORMS"]');
    var rows = form.querySelector("[data-line-rows]");
    if (!template || !total || !rows) return;
    var index = Number(total.value);
    rows.insertAdjacentHTML("beforeend", template.innerHTML.replace(/__prefix__/g, String(index)));
    total.value = String(index + 1);
    var added = rows.lastElementChild;
    var item = added && added.querySelector("[data-line-item]");
    if (item) item.focus();
    recalc(form);
  }

  function formOf(element) {
    return element && element.closest ? element.closest("[data-document-form]") : null;
  }

  document.addEventListener("input", function (event) {
    var form = formOf(event.target);
    if (form) recalc(form);
  });

  document.addEventListener("change", function (event) {
    var form = formOf(event.target);
    if (form) recalc(form);
  });

  document.addEventListener("click", function (event) {
    var add = event.target.closest("[data-add-line]");
    if (add) {
      event.preventDefault();
      addLine(formOf(add));
      return;
    }
    var full = event.target.closest("[data-pay-full]");
    if (full) {
      event.preventDefault();
      var input = document.getElementById(full.dataset.for);
      if (input) {
        input.value = full.dataset.payFull;
        recalc(formOf(full));
      }
    }
  });

  document.addEventListener("submit", function (event) {
    var message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var form = formOf(event.target);
    if (form) recalc(form);
  });

  // Comments & History refreshes itself while a WhatsApp message is on its way (htmx replaces the
  // card): a "Show details" the accountant opened stays open across the refresh.
  var openDetails = {};
  document.addEventListener(
    "toggle",
    function (event) {
      var key = event.target && event.target.dataset && event.target.dataset.keepOpen;
      if (key) openDetails[key] = event.target.open;
    },
    true
  );
  document.addEventListener("htmx:afterSettle", function () {
    document.querySelectorAll("details[data-keep-open]").forEach(function (details) {
      if (openDetails[details.dataset.keepOpen]) details.open = true;
    });
  });

  function init() {
    document.querySelectorAll("[data-document-form]").forEach(recalc);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
