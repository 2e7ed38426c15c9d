// heapscope timeline page: hover values and legend toggles for the inline SVG chart.
// Reads the chart's data from #heapscope-data; draws with the same scale as the Rust code,
// so restacked areas land exactly where the SVG put them. Marks <html> with
// data-heapscope-check="ok" once its own drawing matches the SVG's (checked in CI).
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("heapscope-data").textContent);
  const svg = document.querySelector("svg.heapscope-timeline");
  const tooltip = document.getElementById("tooltip");
  const plot = data.plot;
  const SVG_NS = "http://www.w3.org/2000/svg";

  // The axis runs from start_ms (0, or the first sample kept by a ring that dropped some).
  const span = Math.max(plot.end_ms - plot.start_ms, 1);
  const x = (ms) =>
    plot.left + Math.min(Math.max((ms - plot.start_ms) / span, 0), 1) * (plot.right - plot.left);
  const y = (bytes) => plot.bottom - Math.min(bytes / plot.top_bytes, 1) * (plot.bottom - plot.top);
  // One decimal at most, as the SVG writer does.
  const num = (v) => String(Math.round(v * 10) / 10);
  // heapscope::format_bytes: base 1024, one decimal.
  function formatBytes(bytes) {
    if (bytes < 1024) return bytes + " B";
    const units = ["KiB", "MiB", "GiB", "TiB"];
    let value = bytes / 1024;
    let unit = 0;
    // As heapscope::format_bytes: the unit is chosen on the value as printed (one decimal), so
    // 1 048 575 bytes is "1.0 MiB", not "1024.0 KiB".
    while (Math.round(value * 10) >= 10240 && unit + 1 < units.length) {
      value /= 1024;
      unit += 1;
    }
    return value.toFixed(1) + " " + units[unit];
  }

  const hidden = new Set();
  const areas = data.owners.map((_, i) => svg.querySelector("#owner-" + i));

  // The stacked paths of the visible owners, bottom first (null for a hidden owner).
  function stackPaths() {
    const times = data.times_ms;
    let base = times.map(() => 0);
    return data.owners.map((owner) => {
      if (hidden.has(owner.name)) return null;
      const top = base.map((b, k) => b + owner.values[k]);
      let d = times.map((t, k) => (k ? " L" : "M") + num(x(t)) + "," + num(y(top[k]))).join("");
      for (let k = times.length - 1; k >= 0; k--) {
        d += " L" + num(x(times[k])) + "," + num(y(base[k]));
      }
      base = top;
      return d + " Z";
    });
  }

  function redraw() {
    stackPaths().forEach((d, i) => {
      const group = areas[i];
      if (!group) return;
      group.style.display = d === null ? "none" : "";
      if (d !== null) group.querySelector("path").setAttribute("d", d);
    });
  }

  // Legend entries toggle their series.
  function targets(series) {
    if (series === "rss") return [svg.querySelector("#rss")];
    if (series === "limit") return [svg.querySelector("#limit")];
    if (series === "phase-peak") return Array.from(svg.querySelectorAll(".phase-peak"));
    if (series.startsWith("phase:")) {
      const name = series.slice("phase:".length);
      return Array.from(svg.querySelectorAll("g.phase")).filter((g) => g.dataset.phase === name);
    }
    return [];
  }
  for (const entry of svg.querySelectorAll("#legend .legend-entry")) {
    entry.addEventListener("click", () => {
      const series = entry.dataset.series;
      const off = !entry.classList.contains("off");
      entry.classList.toggle("off", off);
      if (series.startsWith("owner:")) {
        const name = series.slice("owner:".length);
        if (off) hidden.add(name);
        else hidden.delete(name);
        redraw();
      } else {
        for (const t of targets(series)) if (t) t.style.display = off ? "none" : "";
      }
    });
  }

  // Hover: a cursor line and the values at the nearest sample.
  const cursor = document.createElementNS(SVG_NS, "line");
  cursor.setAttribute("y1", plot.top);
  cursor.setAttribute("y2", plot.bottom);
  cursor.setAttribute("stroke", "#555");
  cursor.setAttribute("stroke-dasharray", "3 3");
  cursor.style.display = "none";
  cursor.style.pointerEvents = "none";
  svg.appendChild(cursor);

  function row(colour, name, value) {
    const div = document.createElement("div");
    if (colour) {
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colour;
      div.appendChild(swatch);
    }
    div.appendChild(document.createTextNode(name));
    const v = document.createElement("span");
    v.className = "value";
    v.textContent = value;
    div.appendChild(v);
    return div;
  }

  function hide() {
    tooltip.style.display = "none";
    cursor.style.display = "none";
  }

  svg.addEventListener("mousemove", (event) => {
    const matrix = svg.getScreenCTM();
    if (!matrix) return hide();
    const p = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
    if (p.x < plot.left || p.x > plot.right || p.y < plot.top || p.y > plot.bottom) return hide();
    const t = plot.start_ms + ((p.x - plot.left) / (plot.right - plot.left)) * span;
    let k = 0;
    data.times_ms.forEach((time, i) => {
      if (Math.abs(time - t) < Math.abs(data.times_ms[k] - t)) k = i;
    });
    const at = data.times_ms[k];
    cursor.setAttribute("x1", x(at));
    cursor.setAttribute("x2", x(at));
    cursor.style.display = "";

    tooltip.replaceChildren();
    const head = document.createElement("b");
    head.textContent = (at / 1000).toFixed(2) + " s";
    tooltip.appendChild(head);
    const phase = data.phases.find((ph) => ph.start_ms <= t && t <= ph.end_ms);
    if (phase) tooltip.appendChild(row(null, "phase: " + phase.name, ""));
    if (data.rss[k] !== null) tooltip.appendChild(row("#222", "RSS", formatBytes(data.rss[k])));
    let total = 0;
    for (let i = data.owners.length - 1; i >= 0; i--) {
      const owner = data.owners[i];
      if (hidden.has(owner.name)) continue;
      total += owner.values[k];
      tooltip.appendChild(row(owner.colour, owner.name, formatBytes(owner.values[k])));
    }
    tooltip.appendChild(row(null, "stacked", formatBytes(total)));
    tooltip.style.display = "block";
    const left = event.pageX + 16;
    const fits = left + tooltip.offsetWidth < window.scrollX + document.documentElement.clientWidth;
    tooltip.style.left = (fits ? left : event.pageX - 16 - tooltip.offsetWidth) + "px";
    tooltip.style.top = event.pageY + 12 + "px";
  });
  svg.addEventListener("mouseleave", hide);

  // Self-check: the script's drawing equals the SVG's before anything is toggled.
  const same = stackPaths().every((d, i) => areas[i] && areas[i].querySelector("path").getAttribute("d") === d);
  document.documentElement.dataset.heapscopeCheck = same ? "ok" : "mismatch";
})();
