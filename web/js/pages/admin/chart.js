// A horizontal bar chart in SVG, drawn by hand: one group of bars per row,
// one bar per series, a legend, the value written at the end of each bar.
// Horizontal, so that long names (partners, territories) fit on a phone.
// The chart is a picture of the table below it: it is labelled as such and
// the table carries the same figures for screen readers.

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs, ...children) {
	const node = document.createElementNS(NS, tag);
	for (const [k, v] of Object.entries(attrs || {}))
		if (v !== null && v !== undefined)
			node.setAttribute(k, String(v));
	for (const c of children)
		node.append(c instanceof Node ? c : document.createTextNode(String(c)));
	return node;
}

// barChart({title, desc, rows: [{label, values: [n|null, ...]}],
//           series: [{name, cls}], format}) → <svg>
export function barChart({ title, desc, rows, series, format = String }) {
	const barH = 13;
	const gap = 3;
	const groupGap = 12;
	const labelW = 120;
	const valueW = 48;
	const plotW = 280;
	const legendH = 24;
	const groupH = series.length * (barH + gap) - gap;
	const height = legendH + rows.length * (groupH + groupGap) + 4;
	const width = labelW + plotW + valueW;
	const max = Math.max(1, ...rows.flatMap((r) =>
	    r.values.filter((v) => typeof v === 'number')));

	const titleId = `chart-t-${Math.random().toString(36).slice(2)}`;
	const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img',
	    class: 'chart', 'aria-labelledby': titleId,
	    preserveAspectRatio: 'xMinYMin meet' },
	    s('title', { id: titleId }, title), s('desc', {}, desc));

	// Legend.
	let x = 0;
	series.forEach((se) => {
		svg.append(s('rect', { x, y: 4, width: 12, height: 12,
		    class: `bar ${se.cls}` }),
		    s('text', { x: x + 16, y: 14, class: 'legend' }, se.name));
		x += 22 + se.name.length * 6.5;
	});

	rows.forEach((r, i) => {
		const y0 = legendH + i * (groupH + groupGap);
		const label = r.label.length > 17 ? `${r.label.slice(0, 16)}…` : r.label;
		svg.append(s('text', { x: labelW - 8, y: y0 + groupH / 2 + 4,
		    'text-anchor': 'end', class: 'label' },
		    s('title', {}, r.label), label));
		r.values.forEach((v, j) => {
			const y = y0 + j * (barH + gap);
			const w = typeof v === 'number' ? (v / max) * plotW : 0;
			svg.append(s('rect', { x: labelW, y, width: Math.max(w, v ? 1 : 0),
			    height: barH, class: `bar ${series[j].cls}` }),
			    s('text', { x: labelW + w + 4, y: y + barH - 3,
				class: 'value' }, v === null ? '–' : format(v)));
		});
	});
	svg.append(s('line', { x1: labelW, x2: labelW, y1: legendH - 2,
	    y2: height, class: 'axis' }));
	return svg;
}
