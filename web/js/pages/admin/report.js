// The coordinator's activity report (#/admin/report): report.activity over
// a range, grouped by month, category, territory, partner or structure
// (docs/reports.md defines every figure); a bar chart, the same figures in
// a table, and a CSV for French spreadsheets made in the page.

import { call } from '../../rpc.js';
import { t, lang } from '../../i18n.js';
import { el, clear, field, table, loading, failure } from '../../ui.js';
import * as fmt from '../../fmt.js';
import { submitWith, download, ZONE } from '../venue.js';
import { barChart } from './chart.js';

const GROUPS = ['month', 'category', 'territory', 'partner', 'structure'];
const FIGURES = ['seats_offered', 'seats_booked', 'seats_attended',
    'no_shows', 'beneficiaries', 'first_timers', 'staff_seats', 'withdrawn_late',
    'demand'];

// A row's name for people: "mars 2026", "Musée", the partner's name.
function rowLabel(groupBy, item) {
	if (groupBy === 'month') {
		const [y, m] = item.key.split('-').map(Number);
		return new Intl.DateTimeFormat(lang() === 'fr' ? 'fr-FR' : 'en-GB',
		    { month: 'long', year: 'numeric', timeZone: 'UTC' })
		    .format(new Date(Date.UTC(y, m - 1, 15)));
	}
	if (groupBy === 'category')
		return t(`cat.${item.key}`);
	return item.name || String(item.key);
}

function num(v) {
	return v === null || v === undefined ? '–'
	    : new Intl.NumberFormat(lang() === 'fr' ? 'fr-FR' : 'en-GB').format(v);
}

// The CSV: UTF-8 with a byte-order mark and ';' between fields, as French
// spreadsheets expect; a field holding ';', '"' or a line break is quoted.
export function reportCsv(report, groupBy) {
	const q = (v) => {
		const s = v === null || v === undefined ? '' : String(v);
		return /[;"\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
	};
	const head = [t(`admin.report.by.${groupBy}`), ...FIGURES.map((f) =>
	    t(`admin.report.fig.${f}`))];
	const lines = [head.map(q).join(';')];
	for (const it of report.items)
		lines.push([groupBy === 'month' ? it.key : rowLabel(groupBy, it),
		    ...FIGURES.map((f) => it[f])].map(q).join(';'));
	if (report.total)
		lines.push([t('admin.report.total'), ...FIGURES.map((f) =>
		    report.total[f])].map(q).join(';'));
	return '\uFEFF' + lines.join('\r\n') + '\r\n';
}

// Ranges people ask for, in Paris time: this year, last year, this month,
// last month, the last twelve months.
function presets() {
	const today = fmt.ymd(new Date(), ZONE);
	const y = Number(today.slice(0, 4));
	const month = today.slice(0, 8) + '01';
	return {
		year: [`${y}-01-01`, `${y + 1}-01-01`],
		last_year: [`${y - 1}-01-01`, `${y}-01-01`],
		month: [month, fmt.addMonths(month, 1)],
		last_month: [fmt.addMonths(month, -1), month],
		twelve: [fmt.addMonths(month, -11), fmt.addMonths(month, 1)],
	};
}

export const adminReport = {
	route: '/admin/report',
	roles: ['admin'],
	title: 'admin.report.title',
	async render(root) {
		const pre = presets();
		const range = field({ name: 'preset', label: t('admin.report.range'),
		    options: [...Object.keys(pre).map((k) => [k, t(`admin.report.preset.${k}`)]),
			['custom', t('admin.report.preset.custom')]],
		    attrs: { 'data-test': 'report-preset' } });
		const from = field({ name: 'from', type: 'date', label: t('admin.report.from'),
		    attrs: { value: pre.year[0], 'data-test': 'report-from' } });
		// The form shows the last day included; the API wants the
		// first day excluded.
		const lastDay = (d) => new Date(Date.parse(d) - 86400e3).toISOString().slice(0, 10);
		const nextDay = (d) => new Date(Date.parse(d) + 86400e3).toISOString().slice(0, 10);
		const to = field({ name: 'to', type: 'date', label: t('admin.report.to'),
		    hint: t('admin.report.to_hint'),
		    attrs: { value: lastDay(pre.year[1]), 'data-test': 'report-to' } });
		const group = field({ name: 'group_by', label: t('admin.report.group_by'),
		    options: GROUPS.map((g) => [g, t(`admin.report.by.${g}`)]),
		    attrs: { 'data-test': 'report-group' } });
		range.control.addEventListener('change', () => {
			const p = pre[range.control.value];
			if (p) {
				from.control.value = p[0];
				to.control.value = lastDay(p[1]);
			}
		});
		for (const c of [from.control, to.control])
			c.addEventListener('input', () => { range.control.value = 'custom'; });

		const form = el('form', { novalidate: true, 'data-test': 'report-form' },
		    el('div', { class: 'row' }, range, from, to, group),
		    el('div', { class: 'actions' }, el('button', { type: 'submit',
			class: 'primary', 'data-test': 'report-submit' },
			t('admin.report.submit'))));
		const out = el('div', { class: 'report', 'aria-live': 'polite' });
		root.append(el('h1', {}, t('admin.report.title')),
		    el('p', { class: 'muted' }, t('admin.report.intro')), form, out);

		async function run() {
			const groupBy = group.control.value;
			clear(out, loading());
			const r = await call('report.activity', {
			    from: fmt.atZone(from.control.value, '00:00', ZONE),
			    to: fmt.atZone(nextDay(to.control.value), '00:00', ZONE),
			    group_by: groupBy });
			show(r, groupBy);
		}

		function show(r, groupBy) {
			const chartSeries = [
			    { key: 'seats_offered', cls: 's1' },
			    { key: 'seats_booked', cls: 's2' },
			    { key: 'seats_attended', cls: 's3' },
			].filter((se) => !(se.key === 'seats_offered' &&
			    (groupBy === 'structure' || groupBy === 'territory')));
			const caption = t('admin.report.caption', {
			    from: fmt.date(from.control.value + 'T12:00:00Z', ZONE),
			    to: fmt.date(to.control.value + 'T12:00:00Z', ZONE),
			    by: t(`admin.report.by.${groupBy}`).toLowerCase() });
			const rows = r.items.map((it) => [rowLabel(groupBy, it),
			    ...FIGURES.map((f) => num(it[f]))]);
			const tbl = table([t(`admin.report.by.${groupBy}`),
			    ...FIGURES.map((f) => t(`admin.report.fig.${f}`))],
			    rows, { 'data-test': 'report-table', class: 'figures' });
			const tb = tbl.querySelector('table');
			tb.prepend(el('caption', {}, caption));
			if (r.total)
				tb.append(el('tfoot', {}, el('tr', {},
				    el('th', { scope: 'row' }, t('admin.report.total')),
				    FIGURES.map((f) => el('td', {}, num(r.total[f]))))));
			tb.querySelectorAll('tbody tr td:first-child').forEach((td) => {
				const th = el('th', { scope: 'row' }, td.textContent);
				td.replaceWith(th);
			});
			const chart = r.items.length ? barChart({
			    title: caption,
			    desc: t('admin.report.chart_desc'),
			    rows: r.items.map((it) => ({ label: rowLabel(groupBy, it),
				values: chartSeries.map((se) => it[se.key]) })),
			    series: chartSeries.map((se) => ({
				name: t(`admin.report.fig.${se.key}`), cls: se.cls })),
			    format: num }) : null;
			const csv = el('button', { type: 'button', 'data-test': 'report-csv',
			    onclick: () => download(
				`strapontin-${groupBy}-${from.control.value}-${to.control.value}.csv`,
				reportCsv(r, groupBy), 'text/csv;charset=utf-8') },
			    t('admin.report.csv'));
			clear(out,
			    r.items.length ? el('figure', { class: 'chart-wrap',
				'data-test': 'report-chart' }, chart,
				el('figcaption', { class: 'muted' },
				    t('admin.report.chart_note'))) :
				el('p', { class: 'muted' }, t('admin.report.empty')),
			    el('div', { class: 'actions' }, csv),
			    tbl);
		}

		submitWith(form, 'admin.report', run);
		try {
			await run();
		} catch (err) {
			clear(out, failure(err));
		}
	},
};
