/* Small, dependency-free behaviours shared by every page. Event delegation on document, so
   content swapped in by htmx keeps working without re-binding.

   List multi-select
     <table>  <th><input type="checkbox" data-select-all></th> … <td><input type="checkbox" name="selected" value="…"></td>
     <div class="bulk-bar" hidden> <span data-selected-count>0</span> … <button data-clear-selection> </div>
     The header checkbox toggles every `selected` box of its table; the nearest `.bulk-bar` (inside the
     closest `[data-list]`, else the page's) shows while something is selected; rows get `tr.selected`.
     <div data-select-matching="N" hidden> (books/_select_matching.html, on a list longer than its page)
     shows while every row of the page is ticked and offers [data-select-matching-all]: choosing it
     enables its hidden `matching` input (the list's filter, posted by the bar's actions instead of
     the ids) and the bar counts N. Unticking a row or clearing the selection takes it back.
   Auto-submit   <select data-autosubmit> submits its form on change (organization and language switchers).
   Navigation    [data-nav-toggle] opens/closes the sidebar on narrow screens.
   Formsets      <div data-formset="prefix"> with <template data-formset-empty> (the formset's empty_form,
                 rendered inside a <tr> or a block) and a [data-formset-add] button: adds a form and bumps
                 TOTAL_FORMS.
   Menus         <details class="user-menu"> and <details class="dropdown"> close on an outside click or Escape.
   Print         [data-print] prints the page.
*/
(function () {
  "use strict";

  var MENUS = "details.user-menu[open], details.dropdown[open]";

  function scopeOf(el) {
    return el.closest("[data-list]") || document;
  }

  function boxesIn(root) {
    return Array.prototype.slice.call(root.querySelectorAll('input[type="checkbox"][name="selected"]'));
  }

  function refreshSelection(scope) {
    var tables = scope.querySelectorAll("table");
    Array.prototype.forEach.call(tables, function (table) {
      var boxes = boxesIn(table);
      var header = table.querySelector("input[data-select-all]");
      var checked = boxes.filter(function (b) {
        return b.checked;
      }).length;
      if (header) {
        header.checked = boxes.length > 0 && checked === boxes.length;
        header.indeterminate = checked > 0 && checked < boxes.length;
      }
      boxes.forEach(function (b) {
        var row = b.closest("tr");
        if (row) row.classList.toggle("selected", b.checked);
      });
    });
    var all = boxesIn(scope);
    var count = all.filter(function (b) {
      return b.checked;
    }).length;
    var matching = refreshMatching(scope, all.length > 0 && count === all.length);
    if (matching !== null) count = matching;
    Array.prototype.forEach.call(scope.querySelectorAll(".bulk-bar"), function (bar) {
      bar.hidden = count === 0;
      Array.prototype.forEach.call(bar.querySelectorAll("[data-selected-count]"), function (el) {
        el.textContent = String(count);
      });
    });
  }

  // "Select all N matching": the count N once chosen, else null.
  function refreshMatching(scope, pageTicked) {
    var chosenCount = null;
    Array.prototype.forEach.call(scope.querySelectorAll("[data-select-matching]"), function (banner) {
      var input = banner.querySelector("input[data-matching]");
      if (!input) return;
      if (!pageTicked) input.disabled = true;
      banner.hidden = !pageTicked;
      var offer = banner.querySelector("[data-select-matching-offer]");
      var chosen = banner.querySelector("[data-select-matching-chosen]");
      if (offer) offer.hidden = !input.disabled;
      if (chosen) chosen.hidden = input.disabled;
      if (!input.disabled) chosenCount = banner.getAttribute("data-select-matching");
    });
    return chosenCount;
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLElement)) return;

    if (target.matches("input[data-select-all]")) {
      var table = target.closest("table");
      if (table) {
        boxesIn(table).forEach(function (b) {
          if (!b.disabled) b.checked = target.checked;
        });
      }
      refreshSelection(scopeOf(target));
      return;
    }
    if (target.matches('input[type="checkbox"][name="selected"]')) {
      refreshSelection(scopeOf(target));
      return;
    }
    if (target.matches("select[data-autosubmit]") && target.form) {
      if (typeof target.form.requestSubmit === "function") target.form.requestSubmit();
      else target.form.submit();
    }
  });

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;

    var selectMatching = target.closest("[data-select-matching-all]");
    if (selectMatching) {
      event.preventDefault();
      var banner = selectMatching.closest("[data-select-matching]");
      var input = banner && banner.querySelector("input[data-matching]");
      if (input) input.disabled = false;
      refreshSelection(scopeOf(selectMatching));
      return;
    }

    var clear = target.closest("[data-clear-selection]");
    if (clear) {
      event.preventDefault();
      var scope = scopeOf(clear);
      boxesIn(scope).forEach(function (b) {
        b.checked = false;
      });
      refreshSelection(scope);
      return;
    }

    var toggle = target.closest("[data-nav-toggle]");
    if (toggle) {
      event.preventDefault();
      document.body.classList.toggle("nav-open");
      return;
    }
    if (document.body.classList.contains("nav-open") && !target.closest(".sidebar")) {
      document.body.classList.remove("nav-open");
    }

    if (target.closest("[data-print]")) {
      event.preventDefault();
      window.print();
      return;
    }

    var add = target.closest("[data-formset-add]");
    if (add) {
      event.preventDefault();
      addForm(add);
      return;
    }

    Array.prototype.forEach.call(document.querySelectorAll(MENUS), function (menu) {
      if (!menu.contains(target)) menu.removeAttribute("open");
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    Array.prototype.forEach.call(document.querySelectorAll(MENUS), function (menu) {
      menu.removeAttribute("open");
    });
    document.body.classList.remove("nav-open");
  });

  function addForm(button) {
    var container = button.closest("[data-formset]");
    if (!container) return;
    var prefix = container.getAttribute("data-formset");
    var template = container.querySelector("template[data-formset-empty]");
    var total = container.querySelector('input[name="' + prefix + '-TOTAL_FORMS"]');
    var max = container.querySelector('input[name="' + prefix + '-MAX_NUM_FORMS"]');
    var target = container.querySelector("[data-formset-body]");
    if (!template || !total || !target) return;
    var index = parseInt(total.value, 10) || 0;
    if (max && index >= parseInt(max.value, 10)) return;
    var html = template.innerHTML.replace(/__prefix__/g, String(index));
    var holder = document.createElement(target.tagName === "TBODY" ? "tbody" : "div");
    holder.innerHTML = html.trim();
    var first = null;
    while (holder.firstChild) {
      var node = holder.firstChild;
      if (!first && node.nodeType === 1) first = node;
      target.appendChild(node);
    }
    total.value = String(index + 1);
    if (first) {
      var input = first.querySelector("input:not([type=hidden]):not([type=checkbox]), select, textarea");
      if (input) input.focus();
    }
  }

  // Restore the bar after a back/forward navigation that kept checkbox state.
  window.addEventListener("pageshow", function () {
    refreshSelection(document);
  });
  document.addEventListener("htmx:afterSwap", function () {
    refreshSelection(document);
  });
})();
