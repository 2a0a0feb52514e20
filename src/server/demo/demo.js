// The demo page of mp4-fcgi's development listener (--http): lists the films
// of /_demo/films.json and plays the chosen one progressive, with HLS
// (hls.js) or with DASH (dash.js), both loaded from /_demo/ when first used.
// Names reach the page as text only (textContent), never as HTML.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const video = $('video');
  // What the page did, for whoever looks (tests/demo_page.rs does).
  const demo = (window.demo = { ready: false, films: [], film: null, mode: null, url: null, errors: [] });
  let player = null;

  const loading = {};
  function script(src) {
    loading[src] ??= new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = src;
      s.onload = resolve;
      s.onerror = () => reject(new Error(`could not load ${src}`));
      document.head.appendChild(s);
    });
    return loading[src];
  }

  function note(text, error) {
    const li = document.createElement('li');
    li.textContent = text;
    if (error) {
      li.className = 'error';
      demo.errors.push(text);
    }
    $('log').appendChild(li);
  }

  function describe(e) {
    if (e && typeof e === 'object') return `${e.code ?? ''} ${e.message ?? JSON.stringify(e)}`.trim();
    return String(e);
  }

  function stop() {
    if (player) {
      try {
        player.destroy();
      } catch (e) {
        // already gone
      }
      player = null;
    }
    video.removeAttribute('src');
    video.load();
  }

  function choose(film) {
    demo.film = film;
    $('chosen').textContent = film.name;
    $('window').hidden = false;
    for (const li of $('films').children) li.classList.toggle('chosen', li.dataset.url === film.url);
  }

  // ?start=&end= for every mode: the manifests carry it to every segment.
  function windowQuery() {
    const q = new URLSearchParams();
    for (const k of ['start', 'end']) {
      const v = $(k).value.trim();
      if (v) q.set(k, v);
    }
    const s = q.toString();
    return s ? `?${s}` : '';
  }

  async function play(mode) {
    if (!demo.film) return;
    stop();
    $('log').textContent = '';
    demo.errors = [];
    const q = windowQuery();
    const base = demo.film.url;
    const url = mode === 'hls' ? `${base}/master.m3u8${q}` : mode === 'dash' ? `${base}/manifest.mpd${q}` : base + q;
    Object.assign(demo, { mode, url });
    $('url').href = url;
    $('url').textContent = url;
    try {
      if (mode === 'hls') {
        await script('/_demo/hls.min.js');
        if (window.Hls && Hls.isSupported()) {
          const hls = new Hls();
          hls.on(Hls.Events.ERROR, (_, d) =>
            note(`hls.js ${d.fatal ? 'fatal error' : 'error'}: ${d.type} ${d.details}`, true));
          hls.loadSource(url);
          hls.attachMedia(video);
          player = { destroy: () => hls.destroy() };
        } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
          video.src = url; // Safari plays HLS itself
        } else {
          throw new Error('this browser has no Media Source Extensions for hls.js');
        }
      } else if (mode === 'dash') {
        await script('/_demo/dash.all.min.js');
        const p = dashjs.MediaPlayer().create();
        p.on(dashjs.MediaPlayer.events.ERROR, (e) => note(`dash.js error: ${describe(e.error)}`, true));
        p.initialize(video, url, true);
        player = { destroy: () => p.reset() };
      } else {
        video.src = url;
      }
      await video.play().catch((e) => note(`${e.message} (press play)`, false));
    } catch (e) {
      note(describe(e), true);
    }
  }

  video.addEventListener('error', () => {
    // Emptied on purpose (stop) is no error.
    if (video.error && video.getAttribute('src')) note(`video error: ${describe(video.error)}`, true);
  });

  $('window').addEventListener('submit', (e) => {
    e.preventDefault();
    play(e.submitter?.value || 'progressive');
  });

  $('typed').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('path').value.trim().replace(/^\/+/, '');
    if (!name) return;
    choose({ name, url: `/${name.split('/').map(encodeURIComponent).join('/')}` });
  });

  async function list() {
    try {
      const r = await fetch('/_demo/films.json', { cache: 'no-store' });
      if (!r.ok) throw new Error(`/_demo/films.json answered ${r.status}`);
      const j = await r.json();
      demo.films = j.films;
      for (const film of j.films) {
        const li = document.createElement('li');
        li.dataset.url = film.url;
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = film.name;
        b.title = film.url;
        b.addEventListener('click', () => choose(film));
        li.appendChild(b);
        $('films').appendChild(li);
      }
      const n = j.films.length;
      $('listing').textContent = !j.local
        ? 'The films come from --origin: type a path.'
        : n === 0
          ? 'No film (*.mp4, *.m4v, *.m4a, *.mov) under --root.'
          : `${n} film${n === 1 ? '' : 's'}${j.truncated ? ` (the list stops at ${j.limit} films or ${j.depth} folders deep)` : ''}.`;
    } catch (e) {
      $('listing').textContent = `Could not list the films: ${describe(e)}`;
    }
    demo.ready = true;
  }

  list();
})();
