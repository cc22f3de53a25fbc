// Hovering anything that belongs to a topic (a bar, a circle, a table row) fades the other
// topics in every chart and table, so one topic can be followed across the page.
(function () {
  "use strict";
  // Shows the hover hint, which only makes sense when this script runs.
  document.documentElement.classList.add("interactive");
  var current = null;
  function focusTopic(topic) {
    if (topic === current) {
      return;
    }
    current = topic;
    document.body.classList.toggle("focusing", topic !== null);
    var items = document.querySelectorAll("[data-topic]");
    for (var i = 0; i < items.length; i++) {
      items[i].classList.toggle("focused", items[i].getAttribute("data-topic") === topic);
    }
  }
  document.addEventListener("mouseover", function (event) {
    var item = event.target.closest ? event.target.closest("[data-topic]") : null;
    focusTopic(item ? item.getAttribute("data-topic") : null);
  });
})();
