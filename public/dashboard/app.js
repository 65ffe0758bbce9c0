/* The analytics dashboard. Plain script, no build step, no third-party code but uPlot (vendored).
 * The admin key: entered once in the form (or passed as #key=… in the URL fragment, which never
 * reaches a server and is removed from the address bar at once), kept in sessionStorage for this
 * tab only, and sent as a Bearer header to this origin's /v1/analytics API only. */
;(function () {
  'use strict'
  var KEY = 'lmgw-admin-key'
  var REFRESH_MS = 15000
  var PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#ea580c', '#4f46e5', '#0d9488', '#9333ea', '#64748b']
  var $ = function (id) { return document.getElementById(id) }
  var charts = {}
  var timer = null
  var loading = false

  var fromHash = /(?:^#|&)key=([^&]+)/.exec(location.hash)
  if (fromHash) {
    sessionStorage.setItem(KEY, decodeURIComponent(fromHash[1]))
    history.replaceState(null, '', location.pathname + location.search)
  }

  var params = new URLSearchParams(location.search)
  if (params.get('range')) $('range').value = params.get('range')
  if (params.get('group_by')) $('group').value = params.get('group_by')

  var int = new Intl.NumberFormat()
  function fmtInt(n) { return int.format(n) }
  function fmtUsd(n) {
    if (n === 0) return '$0.00'
    if (n < 0.01) return '$' + n.toFixed(4)
    return '$' + n.toFixed(2)
  }
  function fmtMs(n) { return n === null || n === undefined ? '–' : n >= 10000 ? (n / 1000).toFixed(1) + ' s' : Math.round(n) + ' ms' }
  function fmtPct(x) { return (x * 100).toFixed(x > 0 && x < 0.1 ? 1 : 0) + '%' }

  function headers() {
    var k = sessionStorage.getItem(KEY)
    return k ? { authorization: 'Bearer ' + k } : {}
  }

  function api(method, path) {
    return fetch(path, { method: method, headers: headers(), cache: 'no-store', credentials: 'omit' }).then(function (res) {
      return res.json().catch(function () { return {} }).then(function (body) {
        if (res.status === 401 || res.status === 403) {
          var e = new Error((body.error && body.error.message) || 'An admin key is needed.')
          e.auth = true
          throw e
        }
        if (!res.ok) throw new Error((body.error && body.error.message) || 'HTTP ' + res.status)
        return body
      })
    })
  }

  function showLogin(message) {
    $('main').hidden = true
    $('login').hidden = false
    $('login-error').textContent = message || ''
    $('key').focus()
    stopTimer()
  }

  function query() {
    return 'range=' + encodeURIComponent($('range').value) + '&group_by=' + encodeURIComponent($('group').value)
  }

  function load() {
    if (loading) return
    loading = true
    $('status').textContent = 'Loading…'
    var q = query()
    Promise.all([api('GET', '/v1/analytics/summary?' + q), api('GET', '/v1/analytics/timeseries?' + q)])
      .then(function (r) {
        $('login').hidden = true
        $('main').hidden = false
        render(r[0], r[1])
        $('status').textContent = 'Updated ' + new Date().toLocaleTimeString() + ' · ' + r[1].granularity + ' buckets'
        $('status').dataset.loaded = String(Date.now())
        scheduleTimer()
      })
      .catch(function (e) {
        if (e.auth) showLogin(sessionStorage.getItem(KEY) ? e.message : '')
        else $('status').textContent = 'Could not load: ' + e.message
      })
      .finally(function () { loading = false })
  }

  function render(summary, series) {
    var t = summary.totals
    $('t-requests').textContent = fmtInt(t.requests)
    $('t-errors').textContent = fmtPct(t.error_rate)
    $('t-errors-sub').textContent = fmtInt(t.errors) + (t.errors === 1 ? ' error' : ' errors') + (t.cancelled ? ', ' + fmtInt(t.cancelled) + ' cancelled' : '')
    $('t-input').textContent = fmtInt(t.input_tokens)
    $('t-cached').textContent = t.cached_tokens ? fmtInt(t.cached_tokens) + ' cached' : ''
    $('t-output').textContent = fmtInt(t.output_tokens)
    $('t-latency').textContent = fmtMs(t.latency_ms.p50) + ' / ' + fmtMs(t.latency_ms.p95)
    $('t-ttft').textContent = t.ttft_ms.p50 === null ? '' : 'first token p50 ' + fmtMs(t.ttft_ms.p50)
    $('t-cost').textContent = fmtUsd(t.cost_usd)
    $('t-premium').textContent = t.premium_requests ? fmtInt(t.premium_requests) + ' premium requests' : ''
    $('unpriced').textContent = t.unpriced_requests ? fmtInt(t.unpriced_requests) + ' request(s) on models without a known price count as $0.' : ''

    var groupLabel = $('group').selectedOptions[0].textContent
    $('group-name').textContent = groupLabel
    $('group-name-2').textContent = groupLabel
    $('group-col').textContent = groupLabel
    var rows = $('rows')
    rows.textContent = ''
    summary.groups.forEach(function (g) {
      var tr = document.createElement('tr')
      var cells = [g.key, fmtInt(g.requests), fmtInt(g.errors) + (g.requests ? ' (' + fmtPct(g.error_rate) + ')' : ''), fmtInt(g.input_tokens), fmtInt(g.output_tokens), fmtMs(g.latency_ms.p50), fmtMs(g.latency_ms.p95), fmtUsd(g.cost_usd)]
      cells.forEach(function (text, i) {
        var td = document.createElement(i === 0 ? 'th' : 'td')
        if (i === 0) td.scope = 'row'
        td.textContent = text
        tr.appendChild(td)
      })
      rows.appendChild(tr)
    })
    if (!summary.groups.length) {
      var tr = document.createElement('tr')
      var td = document.createElement('td')
      td.colSpan = 8
      td.className = 'empty'
      td.textContent = 'No requests in this range.'
      tr.appendChild(td)
      rows.appendChild(tr)
    }

    var p = summary.privacy
    $('p-storage').textContent = p.storage
    $('p-retention').textContent = p.retention_days + ' days'
    $('p-minutes').textContent = p.minute_retention_hours + ' hours'
    var ul = $('p-collected')
    ul.textContent = ''
    p.collected.forEach(function (f) {
      var li = document.createElement('li')
      var code = document.createElement('code')
      code.textContent = f.field
      li.appendChild(code)
      li.appendChild(document.createTextNode(' ' + f.description))
      ul.appendChild(li)
    })
    $('p-not').textContent = p.not_collected.join(', ')

    var x = series.timestamps.map(function (ms) { return ms / 1000 })
    var s = series.totals
    chart('c-requests', x, [{ label: 'requests', data: s.requests, stroke: PALETTE[0], fill: 'rgba(37,99,235,0.12)' }, { label: 'errors', data: s.errors, stroke: PALETTE[1] }])
    chart('c-tokens', x, [{ label: 'input', data: s.input_tokens, stroke: PALETTE[0] }, { label: 'output', data: s.output_tokens, stroke: PALETTE[2] }])
    chart('c-latency', x, [{ label: 'p50', data: s.latency_p50_ms, stroke: PALETTE[0] }, { label: 'p95', data: s.latency_p95_ms, stroke: PALETTE[3] }])
    chart('c-cost', x, [{ label: 'USD', data: s.cost_usd, stroke: PALETTE[4], fill: 'rgba(124,58,237,0.12)', value: function (u, v) { return v === null ? '–' : fmtUsd(v) } }])
    chart('c-groups', x, series.groups.map(function (g, i) { return { label: g.key, data: g.requests, stroke: PALETTE[i % PALETTE.length] } }))
  }

  function width(el) { return Math.max(260, el.clientWidth) }

  function chart(id, x, lines) {
    var el = $(id)
    var signature = lines.map(function (l) { return l.label }).join('\u0000')
    var data = [x].concat(lines.map(function (l) { return l.data }))
    var existing = charts[id]
    if (existing && existing.signature === signature) {
      existing.plot.setData(data)
      return
    }
    if (existing) existing.plot.destroy()
    var opts = {
      width: width(el),
      height: 200,
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [{ stroke: '#64748b', grid: { stroke: '#e2e8f0' } }, { stroke: '#64748b', grid: { stroke: '#e2e8f0' }, size: 56 }],
      series: [{}].concat(lines.map(function (l) {
        // Sparse series (latency has no value in idle buckets) show their points, or a lone value would be invisible.
        var present = l.data.filter(function (v) { return v !== null }).length
        var s = { label: l.label, stroke: l.stroke, width: 2, points: { show: present < 60 }, spanGaps: false }
        if (l.fill) s.fill = l.fill
        if (l.value) s.value = l.value
        return s
      })),
    }
    charts[id] = { plot: new uPlot(opts, data, el), signature: signature }
  }

  if (typeof ResizeObserver === 'function') {
    new ResizeObserver(function () {
      Object.keys(charts).forEach(function (id) {
        var c = charts[id]
        var w = width($(id))
        if (Math.abs(c.plot.width - w) > 2) c.plot.setSize({ width: w, height: 200 })
      })
    }).observe(document.body)
  }

  function stopTimer() {
    if (timer) clearTimeout(timer)
    timer = null
  }
  function scheduleTimer() {
    stopTimer()
    if ($('auto').checked) timer = setTimeout(load, REFRESH_MS)
  }

  function syncUrl() {
    var u = new URL(location.href)
    u.searchParams.set('range', $('range').value)
    u.searchParams.set('group_by', $('group').value)
    history.replaceState(null, '', u.pathname + u.search)
  }

  $('range').addEventListener('change', function () { syncUrl(); load() })
  $('group').addEventListener('change', function () { syncUrl(); load() })
  $('auto').addEventListener('change', function () { if ($('auto').checked) load(); else stopTimer() })
  $('refresh').addEventListener('click', load)
  $('signout').addEventListener('click', function () {
    sessionStorage.removeItem(KEY)
    showLogin('')
  })
  $('login-form').addEventListener('submit', function (ev) {
    ev.preventDefault()
    sessionStorage.setItem(KEY, $('key').value.trim())
    $('key').value = ''
    load()
  })
  $('wipe').addEventListener('click', function () {
    if (!confirm('Delete all collected analytics data on this gateway? This cannot be undone.')) return
    api('DELETE', '/v1/analytics')
      .then(function (r) {
        $('status').textContent = 'Deleted ' + r.documents + ' stored rollup document(s).'
        load()
      })
      .catch(function (e) { $('status').textContent = 'Could not delete: ' + e.message })
  })
  document.addEventListener('visibilitychange', function () { if (!document.hidden && $('auto').checked && !$('main').hidden) load() })

  load()
})()
