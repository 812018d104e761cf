// The work diary's only script: on a screenshot, each drag adds a region
// (in the image's own pixels) to the cover form's list, drawn on the
// picture until the cover is made or the list is cleared; and the live
// view's refresh.
(function () {
  "use strict";
  var box = document.getElementById("shotbox");
  if (box) {
    var img = document.getElementById("shot"), sel = document.getElementById("sel"), field = document.getElementById("rect");
    var marks = document.getElementById("marks"), count = document.getElementById("rect-count"), form = document.getElementById("coverform");
    // parse reads the field's regions as the server does: "x,y,w,h"
    // separated by ";" or new lines. Parts it cannot read are counted.
    var parse = function () {
      var ok = [], bad = 0;
      field.value.split(/[;\r\n]/).forEach(function (part) {
        if (!part.trim()) return;
        var n = part.split(",").map(function (v) { return v.trim(); });
        if (n.length !== 4 || !n.every(function (v) { return /^\d+$/.test(v); }) || +n[2] <= 0 || +n[3] <= 0) { bad++; return; }
        ok.push(n.map(Number));
      });
      return { rects: ok, bad: bad };
    };
    var size = function () {
      return { w: img.naturalWidth || +box.dataset.width, h: img.naturalHeight || +box.dataset.height };
    };
    // draw shows every listed region on the picture, placed in percent so
    // the marks follow the picture's size.
    var draw = function () {
      var p = parse(), s = size();
      marks.textContent = "";
      p.rects.forEach(function (r, i) {
        var m = document.createElement("div"), label = document.createElement("span");
        m.className = "mark";
        m.style.left = (100 * r[0] / s.w) + "%"; m.style.top = (100 * r[1] / s.h) + "%";
        m.style.width = (100 * r[2] / s.w) + "%"; m.style.height = (100 * r[3] / s.h) + "%";
        label.textContent = String(i + 1);
        m.appendChild(label);
        marks.appendChild(m);
      });
      var n = p.rects.length, text = n ? n + (n === 1 ? " region" : " regions") + " marked" : "";
      if (p.bad) text += (text ? "; " : "") + p.bad + " not understood (x,y,w,h)";
      count.textContent = text;
    };
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
      var p = pos(e), r = img.getBoundingClientRect(), s = size();
      var sx = s.w / r.width, sy = s.h / r.height;
      var x = Math.round(Math.min(start.x, p.x) * sx), y = Math.round(Math.min(start.y, p.y) * sy);
      var w = Math.min(s.w - x, Math.round(Math.abs(p.x - start.x) * sx)), h = Math.min(s.h - y, Math.round(Math.abs(p.y - start.y) * sy));
      start = null;
      sel.hidden = true;
      if (w > 2 && h > 2) {
        var v = field.value.replace(/[\s;]+$/, "");
        field.value = (v ? v + "; " : "") + x + "," + y + "," + w + "," + h;
        draw();
      }
    });
    box.addEventListener("pointercancel", function () { start = null; sel.hidden = true; });
    field.addEventListener("input", draw);
    form.addEventListener("reset", function () { setTimeout(draw, 0); });
    img.addEventListener("load", draw);
    draw();
  }
  var live = document.getElementById("live");
  if (live) {
    setInterval(function () { live.src = live.dataset.src + "?t=" + Date.now(); }, 3000);
  }
})();
