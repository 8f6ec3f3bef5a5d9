// The loss curve as an SVG line with a dot per step: a few dozen lines, so no plotting library (it would be the
// biggest file the console serves, for one chart).
const NS = 'http://www.w3.org/2000/svg';

function node(name, attrs, text) {
  const n = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  if (text !== undefined) n.textContent = text;
  return n;
}

// points: [{step, loss}], drawn into an svg 200 px high, in its own pixels (so the labels are not stretched).
export function drawLoss(svg, points) {
  const W = Math.max(200, svg.clientWidth || 600), H = 200, PAD = 28;
  svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
  svg.replaceChildren();
  svg.append(node('line', {x1: PAD, y1: H - PAD, x2: W - 4, y2: H - PAD, class: 'axis'}),
             node('line', {x1: PAD, y1: 4, x2: PAD, y2: H - PAD, class: 'axis'}));
  if (!points.length) {
    svg.append(node('text', {x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'label'}, 'loss per step appears here'));
    return;
  }
  const steps = points.map(p => p.step), losses = points.map(p => p.loss);
  const s0 = Math.min(...steps), s1 = Math.max(...steps, s0 + 1);
  const lo = Math.min(...losses, 0), hi = Math.max(...losses, lo + 1e-6);
  const x = s => PAD + (s - s0) / (s1 - s0) * (W - PAD - 8);
  const y = l => H - PAD - (l - lo) / (hi - lo) * (H - PAD - 12);
  svg.append(node('polyline', {class: 'curve', points: points.map(p => x(p.step) + ',' + y(p.loss)).join(' ')}));
  for (const p of points) svg.append(node('circle', {class: 'point', cx: x(p.step), cy: y(p.loss), r: 2.5}));
  svg.append(node('text', {x: PAD + 4, y: 14, class: 'label'}, 'loss ' + hi.toFixed(2)),
             node('text', {x: PAD + 4, y: H - PAD - 4, class: 'label'}, lo.toFixed(2)),
             node('text', {x: W - 8, y: H - 8, 'text-anchor': 'end', class: 'label'}, 'step ' + s1));
}
