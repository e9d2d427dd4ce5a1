// vw-mse.js: the player page for H.264/AAC streams. The browser decodes
// them itself, through Media Source Extensions; mpegts.js turns the MPEG-TS
// into what MSE takes. The page looks and behaves like the jsmpeg one: the
// same states, the same access-code flow for private streams (both from
// vw-page.js), the same reconnects (mpegts.js has none of its own), the same
// window.vwPlayer.
"use strict";
(function () {
  const cfg = window.vwConfig;
  const wsURL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + cfg.wsPath;

  const token = vwPage.takeToken(cfg.stream);

  // window.vwPlayer holds the figures the page shows, for automation.
  // frames comes from getVideoPlaybackQuality(); audioFrames counts
  // 1024-sample frames of sound played (silence does not count), and
  // audioLevel is the latest peak level (0 to 1). behindMs is how far the
  // picture is behind the newest media received; firstFrameMs is the time
  // from page start to the first picture. skips and reducedFrameRate: gaps
  // in the pictures received (vwPage.gapWatch).
  const vw = window.vwPlayer = {
    state: "loading", stream: cfg.stream, url: wsURL, codec: "h264",
    frames: 0, audioFrames: 0, audioLevel: 0, bytes: 0, connects: 0, audio: "none", detail: "", status: 0,
    behindMs: 0, firstFrameMs: 0, skips: 0, reducedFrameRate: false
  };

  const $ = (id) => document.getElementById(id);
  const figures = $("figures"), unmute = $("unmute");
  const show = vwPage.display(vw, {
    "no-library": ["bad", "The mpegts.js library is missing from this build"],
    "unsupported": ["bad", "This browser cannot play H.264 with Media Source Extensions"]
  });

  if (!cfg.library || typeof mpegts === "undefined" || typeof vwCodec === "undefined") {
    vw.state = "no-library";
    show();
    return;
  }
  if (!mpegts.getFeatureList().mseLivePlayback) {
    vw.state = "unsupported";
    show();
    return;
  }

  // mpegts.js narrates every segment at "info"; warnings and errors stay.
  mpegts.LoggingControl.enableVerbose = false;
  mpegts.LoggingControl.enableDebug = false;
  mpegts.LoggingControl.enableInfo = false;

  const socketURL = vwPage.socketURL(cfg, wsURL, token);

  const video = $("video");

  // Sound goes through an analyser on its way out, so that the page can
  // tell sound from silence (a muted stream sends silence).
  let actx = null, analyser = null, samples = null;
  try {
    actx = new AudioContext();
    analyser = actx.createAnalyser();
    analyser.fftSize = 2048;
    samples = new Float32Array(analyser.fftSize);
    actx.createMediaElementSource(video).connect(analyser);
    analyser.connect(actx.destination);
  } catch (e) {
    actx = null; // no Web Audio: the element plays the sound itself
  }

  // The loader mpegts.js reads from: the page's own websocket feeds it,
  // one connection per player. Data that arrives before mpegts.js opens it
  // (it waits for the MediaSource) is held, up to a bound.
  let sink = null, held = [], heldBytes = 0;
  const holdMax = 8 << 20;
  class Loader extends mpegts.BaseLoader {
    constructor() {
      super("vw-websocket");
      this._needStash = false;
      this.received = 0;
    }
    open() {
      this._status = mpegts.LoaderStatus.kBuffering;
      sink = this;
      const h = held;
      held = [];
      heldBytes = 0;
      for (const b of h) this.push(b);
    }
    push(buf) {
      const from = this.received;
      this.received += buf.byteLength;
      if (this._onDataArrival) this._onDataArrival(buf, from, this.received);
    }
    abort() {
      if (sink === this) sink = null;
      this._status = mpegts.LoaderStatus.kComplete;
    }
  }
  function feed(buf) {
    if (sink) {
      sink.push(buf);
      return;
    }
    held.push(buf);
    heldBytes += buf.byteLength;
    while (heldBytes > holdMax && held.length > 1) heldBytes -= held.shift().byteLength;
  }

  // One mpegts.js player per connection: a new connection starts a fresh
  // demuxer and MediaSource, so nothing of the old stream's state (a cut
  // frame, another clock after a restart) can wedge the new one.
  let player = null, framesBase = 0, framesLast = 0, framesStart = 0;
  function newPlayer() {
    dropPlayer();
    player = mpegts.createPlayer({ type: "mpegts", isLive: true, url: "vw:" + cfg.wsPath }, {
      isLive: true,
      enableWorker: false,
      enableStashBuffer: false,
      lazyLoad: false,
      deferLoadAfterSourceOpen: true,
      autoCleanupSourceBuffer: true,
      autoCleanupMaxBackwardDuration: 20,
      autoCleanupMinBackwardDuration: 10,
      liveBufferLatencyChasing: false, // chase() below does it, and says so in behindMs
      customLoader: Loader
    });
    player.on(mpegts.Events.ERROR, (type, detail, info) => {
      const why = "player: " + type + " " + detail + (info && info.msg ? " " + info.msg : "");
      if (conn) conn.close(4000, "player error");
      drop(why);
    });
    player.attachMediaElement(video);
    // The element's frame counter may or may not start over with the new
    // source: count from here either way.
    const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    framesStart = q ? q.totalVideoFrames : 0;
    player.load();
    play();
  }
  function dropPlayer() {
    sink = null;
    held = [];
    heldBytes = 0;
    if (!player) return;
    const p = player;
    player = null;
    framesBase += framesLast;
    framesLast = 0;
    try { p.pause(); p.unload(); p.detachMediaElement(); p.destroy(); } catch (e) { /* going anyway */ }
  }

  // Autoplay with sound may be refused until the visitor clicks: then the
  // video plays muted and the unmute button says why there is no sound.
  let soundBlocked = false;
  function play() {
    const p = video.play();
    if (p && p.catch) {
      p.catch(() => {
        if (video.muted) return;
        soundBlocked = true;
        video.muted = true;
        video.play().catch(() => { /* tried */ });
      });
    }
  }
  function tryUnmute() {
    if (actx && actx.state === "suspended") actx.resume();
    if (soundBlocked) {
      soundBlocked = false;
      video.muted = false;
      play();
    }
  }
  unmute.addEventListener("click", tryUnmute);
  $("stage").addEventListener("click", tryUnmute);

  if (video.requestVideoFrameCallback) {
    video.requestVideoFrameCallback((now) => { vw.firstFrameMs = Math.round(now); });
  } else {
    video.addEventListener("playing", () => { if (!vw.firstFrameMs) vw.firstFrameMs = Math.round(performance.now()); }, { once: true });
  }

  // pictures reads the PTS of each video PES as the stream arrives, for the
  // gap watch: mpegts.js tells nothing of what it was given. It follows
  // packets across messages cut anywhere.
  const gaps = vwPage.gapWatch(vw);
  const pictures = {
    carry: null,
    push(data, now) {
      let b = new Uint8Array(data);
      if (this.carry) {
        const joined = new Uint8Array(this.carry.length + b.length);
        joined.set(this.carry);
        joined.set(b, this.carry.length);
        b = joined;
        this.carry = null;
      }
      let i = 0;
      for (; i + 188 <= b.length; i++) {
        if (b[i] !== 0x47) continue;
        this.packet(b, i, now);
        i += 187;
      }
      if (i < b.length) this.carry = b.slice(i);
    },
    packet(b, i, now) {
      const afc = (b[i + 3] >> 4) & 3;
      if (!(b[i + 1] & 0x40) || !(afc & 1)) return; // no PES starts here
      const p = i + 4 + (afc & 2 ? 1 + b[i + 4] : 0);
      if (p + 14 > i + 188 || b[p] !== 0 || b[p + 1] !== 0 || b[p + 2] !== 1) return;
      if ((b[p + 3] & 0xf0) !== 0xe0 || !(b[p + 7] & 0x80)) return; // not video, or no PTS
      const pts = ((b[p + 9] & 0x0e) / 2 * 1073741824 + (b[p + 10] * 128 + (b[p + 11] >> 1)) * 32768 +
        b[p + 12] * 128 + (b[p + 13] >> 1)) / 90000;
      gaps.picture(pts, now);
    },
    reset() { this.carry = null; gaps.reset(); }
  };

  // The connection: one websocket at a time, reconnecting with backoff and
  // asking for a fresh URL each time.
  let socket = "connecting", gotData = false, lastData = 0, closeInfo = "", refusal = null;
  let conn = null, timer = 0, backoff = 500, sniffer = null;

  function start() {
    clearTimeout(timer);
    socket = "connecting";
    gotData = false;
    Promise.resolve().then(socketURL).then(open, (err) => {
      if (err instanceof vwPage.Refused) {
        socket = "refused";
        refusal = err;
      } else {
        drop(err && err.message ? err.message : String(err));
      }
    });
  }
  function open(url) {
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (err) {
      drop(String(err));
      return;
    }
    conn = ws;
    sniffer = new vwCodec.Sniffer();
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      socket = "open";
      vw.connects++;
      pictures.reset();
    };
    ws.onmessage = (ev) => {
      if (conn !== ws || !(ev.data instanceof ArrayBuffer)) return; // text is not video
      backoff = 500;
      gotData = true;
      lastData = performance.now();
      vw.bytes += ev.data.byteLength;
      if (sniffer.push(ev.data) === "mpeg1") {
        conn = null;
        ws.close();
        dropPlayer();
        vwCodec.switchTo("mpeg1");
        return;
      }
      if (!player) newPlayer();
      pictures.push(ev.data, lastData);
      feed(ev.data);
    };
    ws.onclose = (ev) => {
      if (conn !== ws) return;
      drop("code " + ev.code + (ev.reason ? ": " + ev.reason : ""));
    };
  }
  // drop ends the connection and its player and tries again later.
  function drop(why) {
    conn = null;
    dropPlayer();
    socket = "closed";
    closeInfo = why + "; next try in " + (backoff / 1000) + " s";
    clearTimeout(timer);
    timer = setTimeout(start, backoff);
    backoff = Math.min(backoff * 2, 5000);
  }

  // chase keeps the picture near the live edge: a little behind, it plays
  // faster; far behind, or stuck before a gap, it jumps.
  let lastTime = -1, stuckSince = 0;
  function chase(now) {
    const b = video.buffered;
    if (!player || !b.length) {
      vw.behindMs = 0;
      return;
    }
    const end = b.end(b.length - 1);
    // At the end of a range with another after it: pictures the relay (or
    // the uplink) skipped on a slow link. The browser stalls there, sound
    // and all; go on at once from the next range, which starts at a
    // keyframe.
    for (let i = 0; i + 1 < b.length; i++) {
      const t = video.currentTime;
      if (t >= b.start(i) && t >= b.end(i) - 0.1 && t < b.start(i + 1)) {
        video.currentTime = b.start(i + 1);
        stuckSince = now;
        break;
      }
    }
    const t = video.currentTime;
    const behind = Math.max(0, end - t);
    vw.behindMs = Math.round(behind * 1000);
    if (t < b.start(0) || behind > 1) {
      // A backlog (a cached GOP at the start, a stall): the browser decodes
      // from the keyframe before the jump, so the picture lands at once.
      video.currentTime = Math.max(b.start(b.length - 1), end - 0.2);
      video.playbackRate = 1;
      return;
    }
    video.playbackRate = behind > 0.3 ? 1.15 : 1;
    if (t !== lastTime || video.paused) {
      lastTime = t;
      stuckSince = now;
    } else if (now - stuckSince > 1000 && behind > 0.1) {
      // Not moving with media ahead: a hole in the buffer. Jump past it.
      for (let i = 0; i < b.length; i++) {
        if (b.start(i) > t) {
          video.currentTime = b.start(i);
          break;
        }
      }
      stuckSince = now;
    }
    if (video.paused && !soundBlocked) play();
  }

  // Sound heard: the analyser's latest window; frames of sound played
  // since the last tick count while it is not silent.
  let audioTime = -1, audioAcc = 0;
  function listen() {
    if (!analyser) return;
    analyser.getFloatTimeDomainData(samples);
    let peak = 0;
    for (let i = 0; i < samples.length; i++) peak = Math.max(peak, Math.abs(samples[i]));
    vw.audioLevel = Math.round(peak * 1000) / 1000;
    const t = video.currentTime, dt = t - audioTime;
    audioTime = t;
    if (peak > 1e-4 && dt > 0 && dt < 2 && actx.state === "running" && !video.muted) {
      audioAcc += dt * actx.sampleRate / 1024;
      vw.audioFrames = Math.floor(audioAcc);
    }
  }

  const rate = vwPage.bitRate();
  function tick() {
    const now = performance.now();
    gaps.update(now);
    vwPage.connState(vw, { socket, gotData, lastData, closeInfo, refusal }, token, now);
    const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    if (q && player) {
      if (q.totalVideoFrames < framesStart) framesStart = 0; // it started over after all
      framesLast = q.totalVideoFrames - framesStart;
    }
    vw.frames = framesBase + framesLast;
    chase(now);
    listen();
    vw.audio = actx ? actx.state : "none";
    if (soundBlocked) vw.audio = "suspended";
    unmute.hidden = !(vw.audio === "suspended" && vw.frames > 0);
    const kbps = rate(vw.bytes, now);
    figures.textContent = "H.264 · video " + vw.frames + " frames · " + (vw.behindMs / 1000).toFixed(1) + " s behind · audio " +
      (vw.audioLevel > 1e-4 ? "playing" : "silent") + " · " + kbps +
      (vw.audio === "running" ? "" : vw.audio === "none" ? " · no audio output" : " · sound off");
    show();
  }
  window.vwMSE = () => player; // for poking at from the console; vwPlayer stays plain data
  start();
  tick();
  setInterval(tick, 250);
})();
