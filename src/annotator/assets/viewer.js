// chestnode annotator: the image viewer (window/level, zoom, pan, the
// node's findings as an overlay) and the drawing of boxes and polygons.
// Plain ES2017, no framework, nothing loaded from elsewhere.
'use strict';

(function () {
  const root = document.getElementById('viewer');
  if (!root) { return; }
  const sop = root.dataset.sop;
  const csrf = root.dataset.csrf;
  const api = '/annotate/api/images/' + encodeURIComponent(sop);
  const canvas = document.getElementById('canvas');
  const ctx = canvas.getContext('2d');
  const ww = document.getElementById('ww');
  const wl = document.getElementById('wl');
  const message = document.getElementById('message');
  const showFindings = document.getElementById('show-findings');
  const table = document.querySelector('#annotations tbody');

  let grey = null;          // Uint8ClampedArray, one byte per pixel
  let columns = 0;
  let rows = 0;
  const display = document.createElement('canvas');
  const view = { scale: 1, x: 0, y: 0 };
  let findings = null;      // the node's findings, once fetched
  let annotations = [];
  let pending = null;       // {box: {...}} or {polygon: [...]} being drawn
  let polygon = [];         // points of a polygon in progress
  let drag = null;

  function say(text, isError) {
    message.textContent = text;
    message.className = isError ? 'error' : 'ok';
  }

  function tool() {
    const checked = document.querySelector('input[name="tool"]:checked');
    return checked ? checked.value : 'pan';
  }

  // Window/level on the 8-bit image: a lookup table into the display canvas.
  function applyWindow() {
    if (!grey) { return; }
    const width = Math.max(1, Number(ww.value));
    const level = Number(wl.value);
    const low = level - width / 2;
    const lut = new Uint8ClampedArray(256);
    for (let v = 0; v < 256; v += 1) {
      lut[v] = Math.round(((v - low) / width) * 255);
    }
    const dctx = display.getContext('2d');
    const out = dctx.createImageData(columns, rows);
    for (let i = 0, j = 0; i < grey.length; i += 1, j += 4) {
      const g = lut[grey[i]];
      out.data[j] = g; out.data[j + 1] = g; out.data[j + 2] = g; out.data[j + 3] = 255;
    }
    dctx.putImageData(out, 0, 0);
    draw();
  }

  function fit() {
    view.scale = Math.min(canvas.width / columns, canvas.height / rows);
    view.x = (canvas.width - columns * view.scale) / 2;
    view.y = (canvas.height - rows * view.scale) / 2;
  }

  function toImage(event) {
    const rect = canvas.getBoundingClientRect();
    const cx = (event.clientX - rect.left) * (canvas.width / rect.width);
    const cy = (event.clientY - rect.top) * (canvas.height / rect.height);
    return [(cx - view.x) / view.scale, (cy - view.y) / view.scale, cx, cy];
  }

  function clampPoint(p) {
    return [Math.min(Math.max(p[0], 0), columns), Math.min(Math.max(p[1], 0), rows)];
  }

  function shapePath(location) {
    ctx.beginPath();
    if (location.box) {
      const b = location.box;
      ctx.rect(b.x, b.y, b.width, b.height);
    } else if (location.polygon) {
      location.polygon.forEach(function (p, i) {
        if (i === 0) { ctx.moveTo(p[0], p[1]); } else { ctx.lineTo(p[0], p[1]); }
      });
      ctx.closePath();
    }
  }

  function label(text, x, y, colour) {
    ctx.fillStyle = colour;
    ctx.font = (14 / view.scale) + 'px sans-serif';
    ctx.fillText(text, x, y - 4 / view.scale);
  }

  function draw() {
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (!grey) { return; }
    ctx.setTransform(view.scale, 0, 0, view.scale, view.x, view.y);
    ctx.imageSmoothingEnabled = view.scale < 1;
    ctx.drawImage(display, 0, 0);
    ctx.lineWidth = 2 / view.scale;
    if (showFindings.checked && findings) {
      ctx.setLineDash([6 / view.scale, 4 / view.scale]);
      findings.forEach(function (f) {
        const b = f.bounding_box;
        ctx.strokeStyle = '#ffcc00';
        ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
        label(f.label + ' ' + Math.round(f.probability * 100) + '%', b[0], b[1], '#ffcc00');
      });
      ctx.setLineDash([]);
    }
    annotations.forEach(function (a) {
      if (!a.location) { return; }
      ctx.strokeStyle = '#33dd55';
      shapePath(a.location);
      ctx.stroke();
      const first = a.location.box ? [a.location.box.x, a.location.box.y] : a.location.polygon[0];
      label(a.finding + ' (' + a.reader + ')', first[0], first[1], '#33dd55');
    });
    ctx.strokeStyle = '#00e5ff';
    if (pending) { shapePath(pending); ctx.stroke(); }
    if (polygon.length > 0) {
      ctx.beginPath();
      polygon.forEach(function (p, i) {
        if (i === 0) { ctx.moveTo(p[0], p[1]); } else { ctx.lineTo(p[0], p[1]); }
      });
      ctx.stroke();
    }
  }

  canvas.addEventListener('contextmenu', function (event) { event.preventDefault(); });

  canvas.addEventListener('wheel', function (event) {
    event.preventDefault();
    const p = toImage(event);
    const factor = event.deltaY < 0 ? 1.2 : 1 / 1.2;
    view.scale = Math.min(Math.max(view.scale * factor, 0.05), 40);
    view.x = p[2] - p[0] * view.scale;
    view.y = p[3] - p[1] * view.scale;
    draw();
  }, { passive: false });

  canvas.addEventListener('mousedown', function (event) {
    if (!grey) { return; }
    event.preventDefault();
    const p = toImage(event);
    const current = tool();
    if (event.button === 2) {
      drag = { kind: 'window', sx: event.clientX, sy: event.clientY,
        width: Number(ww.value), level: Number(wl.value) };
    } else if (event.button === 1 || (event.button === 0 && current === 'pan')) {
      drag = { kind: 'pan', sx: event.clientX, sy: event.clientY, x: view.x, y: view.y };
    } else if (event.button === 0 && current === 'box') {
      drag = { kind: 'box', start: clampPoint(p) };
      pending = null;
    } else if (event.button === 0 && current === 'polygon') {
      polygon.push(clampPoint(p));
      pending = null;
      draw();
    }
  });

  window.addEventListener('mousemove', function (event) {
    if (!drag) { return; }
    if (drag.kind === 'pan') {
      const rect = canvas.getBoundingClientRect();
      const k = canvas.width / rect.width;
      view.x = drag.x + (event.clientX - drag.sx) * k;
      view.y = drag.y + (event.clientY - drag.sy) * k;
      draw();
    } else if (drag.kind === 'window') {
      ww.value = String(Math.min(Math.max(drag.width + (event.clientX - drag.sx), 1), 255));
      wl.value = String(Math.min(Math.max(drag.level + (event.clientY - drag.sy), 0), 255));
      applyWindow();
    } else if (drag.kind === 'box') {
      const p = clampPoint(toImage(event));
      const s = drag.start;
      pending = { box: {
        x: Math.min(s[0], p[0]), y: Math.min(s[1], p[1]),
        width: Math.abs(p[0] - s[0]), height: Math.abs(p[1] - s[1]) } };
      draw();
    }
  });

  window.addEventListener('mouseup', function () {
    if (drag && drag.kind === 'box' && pending &&
        (pending.box.width < 1 || pending.box.height < 1)) {
      pending = null;
      draw();
    }
    if (drag && drag.kind === 'box' && pending) {
      say('Box drawn: pick the finding and certainty, then save.', false);
    }
    drag = null;
  });

  canvas.addEventListener('dblclick', function () {
    if (tool() !== 'polygon') { return; }
    // The double-click's own clicks added the last point twice.
    if (polygon.length > 1) { polygon.pop(); }
    if (polygon.length >= 3) {
      pending = { polygon: polygon.map(function (p) { return [p[0], p[1]]; }) };
      say('Polygon closed: pick the finding and certainty, then save.', false);
    }
    polygon = [];
    draw();
  });

  document.querySelectorAll('input[name="tool"]').forEach(function (radio) {
    radio.addEventListener('change', function () { polygon = []; draw(); });
  });
  ww.addEventListener('input', applyWindow);
  wl.addEventListener('input', applyWindow);
  document.getElementById('reset').addEventListener('click', function () {
    ww.value = '255'; wl.value = '128'; fit(); applyWindow();
  });

  showFindings.addEventListener('change', async function () {
    if (showFindings.checked && findings === null) {
      const response = await fetch(api + '/findings', { credentials: 'same-origin' });
      findings = response.ok ? await response.json() : [];
      root.dataset.findings = String(findings.length);
    }
    draw();
  });

  function describe(location) {
    if (!location) { return 'image level'; }
    if (location.box) {
      const b = location.box;
      return 'box ' + Math.round(b.x) + ',' + Math.round(b.y) + ' ' +
        Math.round(b.width) + 'x' + Math.round(b.height);
    }
    return 'polygon of ' + location.polygon.length + ' points';
  }

  function cell(row, text) {
    const td = document.createElement('td');
    td.textContent = text;
    row.appendChild(td);
  }

  async function loadAnnotations() {
    const response = await fetch(api + '/annotations', { credentials: 'same-origin' });
    if (!response.ok) { say('The annotations could not be loaded.', true); return; }
    annotations = await response.json();
    table.textContent = '';
    annotations.forEach(function (a) {
      const row = document.createElement('tr');
      row.className = 'annotation';
      cell(row, a.reader);
      cell(row, a.finding + (a.finding_text ? ': ' + a.finding_text : ''));
      cell(row, a.certainty);
      cell(row, describe(a.location));
      cell(row, a.confirmed || '');
      table.appendChild(row);
    });
    root.dataset.annotations = String(annotations.length);
    draw();
  }

  document.getElementById('save').addEventListener('click', async function () {
    const imageLevel = tool() === 'image';
    if (!pending && !imageLevel) {
      say('Draw a box or polygon first (or choose "Image level").', true);
      return;
    }
    const text = document.getElementById('finding-text').value.trim();
    const confirmed = document.getElementById('confirmed').value;
    const body = {
      finding: document.getElementById('finding').value,
      finding_text: text === '' ? null : text,
      location: imageLevel ? null : pending,
      certainty: document.getElementById('certainty').value,
      confirmed: confirmed === '' ? null : confirmed,
    };
    const response = await fetch(api + '/annotations', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify(body),
    });
    if (response.status === 201) {
      pending = null;
      say('Saved.', false);
      await loadAnnotations();
    } else {
      say('Not saved: ' + (await response.text()), true);
    }
  });

  async function loadImage() {
    const response = await fetch(api + '/png', { credentials: 'same-origin' });
    if (!response.ok) { say('The image cannot be shown.', true); return; }
    const bitmap = await createImageBitmap(await response.blob());
    columns = bitmap.width;
    rows = bitmap.height;
    display.width = columns;
    display.height = rows;
    const dctx = display.getContext('2d');
    dctx.drawImage(bitmap, 0, 0);
    const rgba = dctx.getImageData(0, 0, columns, rows).data;
    grey = new Uint8ClampedArray(columns * rows);
    for (let i = 0; i < grey.length; i += 1) { grey[i] = rgba[i * 4]; }
    fit();
    applyWindow();
    root.dataset.columns = String(columns);
    root.dataset.rows = String(rows);
  }

  loadImage().then(loadAnnotations).then(function () { root.dataset.ready = '1'; });
}());
