// The work diary's only script: drag a rectangle on a screenshot to fill
// the cover form (in the image's own pixels), and refresh the live view.
(function () {
  "use strict";
  var box = document.getElementById("shotbox");
  if (box) {
    var img = document.getElementById("shot"), sel = document.getElementById("sel"), field = document.getElementById("rect");
    var start = null;
    var pos = function (e) {
      var r = img.getBoundingClientRect();
      return { x: Math.max(0, Math.min(r.width, e.clientX - r.left)), y: Math.max(0, Math.min(r.height, e.clientY - r.top)) };
    };
    box.addEventListener("pointerdown", function (e) { start = pos(e); box.setPointerCapture(e.pointerId); e.preventDefault(); });
    box.addEventListener("pointermove", function (e) {
      if (!start) return;
      var p = pos(e);
      sel.hidden = false;
      sel.style.left = Math.min(start.x, p.x) + "px"; sel.style.top = Math.min(start.y, p.y) + "px";
      sel.style.width = Math.abs(p.x - start.x) + "px"; sel.style.height = Math.abs(p.y - start.y) + "px";
    });
    box.addEventListener("pointerup", function (e) {
      if (!start) return;
      var p = pos(e), r = img.getBoundingClientRect();
      var sx = img.naturalWidth / r.width, sy = img.naturalHeight / r.height;
      var x = Math.round(Math.min(start.x, p.x) * sx), y = Math.round(Math.min(start.y, p.y) * sy);
      var w = Math.round(Math.abs(p.x - start.x) * sx), h = Math.round(Math.abs(p.y - start.y) * sy);
      start = null;
      if (w > 2 && h > 2) { field.value = x + "," + y + "," + w + "," + h; }
    });
  }
  var live = document.getElementById("live");
  if (live) {
    setInterval(function () { live.src = live.dataset.src + "?t=" + Date.now(); }, 3000);
  }
})();
