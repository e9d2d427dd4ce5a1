// vw-page.js: what both player pages share (the jsmpeg page and the H.264
// page, vw-mse.js): the token a private stream's link carries, the access
// point that trades it for a one-time websocket URL, the states the status
// line shows, the bit rate it reports, and how it tells pictures are
// missing. Each page keeps its own player and its own connection; this
// file holds no state of its own.
"use strict";
(function () {
  // takeToken returns the token of a private stream's link. It arrives in
  // the URL fragment (/play/x#token=…), which browsers never send to a
  // server; it leaves the address bar at once, so that it is not left on
  // screen, in history or in a bookmark, and is kept for this tab only, so
  // that a reload (or the switch to the other player's page) still plays.
  // It only ever leaves the page in the Authorization header of a request
  // to the access point.
  function takeToken(stream) {
    const key = "vw-token:" + stream;
    const frag = new URLSearchParams(location.hash.slice(1));
    if (!frag.has("token")) {
      try { return sessionStorage.getItem(key) || ""; } catch (e) { return ""; }
    }
    const token = frag.get("token").trim();
    frag.delete("token");
    const rest = frag.toString();
    history.replaceState(history.state, "", location.pathname + location.search + (rest ? "#" + rest : ""));
    try { sessionStorage.setItem(key, token); } catch (e) { /* storage off: this load still plays */ }
    return token;
  }

  // Refused is the access point saying no (401, 403): trying again with the
  // same token cannot help, so the player stops and says why.
  class Refused extends Error {
    constructor(status, reason) { super(reason); this.status = status; }
  }

  // socketURL returns the function that gives the URL of each connection
  // attempt. With an access point, it asks for a fresh one every time: a
  // code is good for one handshake within 30 s. A public stream, or a relay
  // without auth, answers a URL without a code, with or without a token.
  function socketURL(cfg, wsURL, token) {
    return async function () {
      if (!cfg.accessPath) return wsURL;
      const headers = token ? { Authorization: "Bearer " + token } : {};
      let resp;
      try {
        resp = await fetch(cfg.accessPath + cfg.wsPath, { method: "POST", headers, cache: "no-store", credentials: "omit" });
      } catch (err) {
        throw new Error("the relay's access point cannot be reached: " + err.message);
      }
      let body = {};
      try { body = await resp.json(); } catch (e) { /* not JSON: said below */ }
      if (resp.ok && typeof body.uri === "string") return body.uri;
      if (resp.status === 401 || resp.status === 403) throw new Refused(resp.status, body.error || resp.statusText);
      // A server without an access point: connect as before there was one.
      if (resp.status === 404 && !body.error) return wsURL;
      throw new Error("the access point answered " + resp.status + (body.error ? ": " + body.error : ""));
    };
  }

  // The states of the status line, as [dot class, text]; a page adds its
  // own (its library missing, say).
  const example = location.pathname + "#token=…";
  const looks = {
    "loading": ["", "Loading…"],
    "connecting": ["warn", "Connecting…"],
    "waiting": ["warn", "Connected; waiting for the stream to send data"],
    "playing": ["ok", "Playing"],
    "stalled": ["warn", "Connected, but no data is arriving: the stream has stopped or paused"],
    "reconnecting": ["bad", "Connection lost; reconnecting…"],
    "needs-token": ["bad", "This stream needs a token: open the link you were given (" + example + ")"],
    "unauthorized": ["bad", "The relay refused this link's token: ask for a new link"],
    "forbidden": ["bad", "This link's token does not allow watching this stream"],
    "error": ["bad", "The player failed"]
  };
  // Refusals stay on screen over the video too, since nothing will play.
  const refusals = ["needs-token", "unauthorized", "forbidden"];

  // display returns show(), which puts vw.state and vw.detail on the page.
  function display(vw, extra) {
    const all = Object.assign({}, looks, extra);
    const $ = (id) => document.getElementById(id);
    const dot = $("dot"), stateText = $("state-text"), notice = $("notice");
    let shown = "";
    return function show() {
      const [cls, text] = all[vw.state] || ["", vw.state];
      const full = text + (vw.detail ? " (" + vw.detail + ")" : "");
      if (full === shown) return;
      shown = full;
      // Playing on a link too slow for the stream: amber, as a warning.
      dot.className = vw.state === "playing" && vw.reducedFrameRate ? "warn" : cls;
      stateText.textContent = full;
      if (notice) {
        notice.hidden = !refusals.includes(vw.state);
        $("notice-text").textContent = text;
        $("notice-detail").textContent = vw.detail ? "The relay said: " + vw.detail : "";
      }
    };
  }

  // A connection that has sent nothing for stallMs is shown as stalled.
  const stallMs = 3000;

  // connState sets vw.state and vw.detail from the page's connection (and
  // vw.reducedFrameRate, which the player sets when pictures go missing):
  // c.socket is "connecting", "open", "refused" or "closed"; c.gotData and
  // c.lastData (performance.now() of the latest message) tell waiting,
  // playing and stalled apart; c.closeInfo says why the last one ended and
  // when the next try is; c.refusal is the access point's Refused.
  function connState(vw, c, token, now) {
    switch (c.socket) {
      case "connecting":
        vw.state = vw.connects > 0 ? "reconnecting" : "connecting";
        vw.detail = vw.connects > 0 ? c.closeInfo : "";
        break;
      case "open":
        if (!c.gotData) vw.state = "waiting";
        else if (now - c.lastData > stallMs) vw.state = "stalled";
        else vw.state = "playing";
        vw.detail = vw.state === "stalled" ? "for " + Math.round((now - c.lastData) / 1000) + " s" : "";
        if (vw.state === "playing" && vw.reducedFrameRate) vw.detail = "reduced frame rate: slow connection";
        break;
      case "refused":
        vw.status = c.refusal.status;
        vw.state = c.refusal.status === 403 ? "forbidden" : token ? "unauthorized" : "needs-token";
        vw.detail = vw.state === "needs-token" ? "" : c.refusal.message;
        break;
      default:
        vw.state = "reconnecting";
        vw.detail = c.closeInfo;
    }
  }

  // bitRate returns rate(bytes, now): the rate over the last two seconds or
  // so, as the status line says it ("640 kbit/s").
  function bitRate() {
    let lastBytes = 0, lastAt = performance.now(), bits = 0;
    return function rate(bytes, now) {
      if (now - lastAt >= 2000) {
        bits = (bytes - lastBytes) * 8 / ((now - lastAt) / 1000);
        lastBytes = bytes;
        lastAt = now;
      }
      return bits >= 1e6 ? (bits / 1e6).toFixed(1) + " Mbit/s" : Math.round(bits / 1e3) + " kbit/s";
    };
  }

  // ptsSince returns b - a in seconds for PTS (in seconds) that count
  // modulo 2^33 ticks of 90 kHz.
  function ptsSince(a, b) {
    const wrap = 8589934592 / 90000;
    let d = (b - a) % wrap;
    if (d < -wrap / 2) d += wrap;
    if (d > wrap / 2) d -= wrap;
    return d;
  }

  // gapWatch returns what notices gaps in the pictures received, a picture
  // more than three frames (and 200 ms) after the one before: a link too
  // slow for the stream makes them, as the relay (or the lab's uplink)
  // sends keyframes and what fits and skips the rest. It counts them in
  // vw.skips and keeps vw.reducedFrameRate true for 3 s after one, which
  // connState shows. Inferred here rather than told by the relay, it covers
  // pictures skipped anywhere on the way and needs nothing in the stream
  // but the stream.
  function gapWatch(vw) {
    let last = null, at = -Infinity;
    const steps = []; // the latest steps between pictures: the frame is their median
    return {
      picture(pts, now) {
        if (last !== null) {
          const step = ptsSince(last, pts);
          if (step > 0 && step < 1 && steps.push(step) > 25) steps.shift();
          const sorted = steps.slice().sort((a, b) => a - b);
          const frame = sorted.length >= 5 ? sorted[sorted.length >> 1] : 0;
          if (frame > 0 && step > Math.max(3 * frame, 0.2)) {
            vw.skips++;
            at = now;
          }
        }
        last = pts;
      },
      // reset forgets the last picture: what a reconnect missed is no gap.
      reset() { last = null; },
      update(now) { vw.reducedFrameRate = now - at < 3000; }
    };
  }

  window.vwPage = { takeToken, Refused, socketURL, display, connState, bitRate, stallMs, ptsSince, gapWatch };
})();
