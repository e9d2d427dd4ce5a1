// vw-codec.js: which player a stream needs, read off the stream itself.
//
// A stream is MPEG-1 video with MP2 audio, which jsmpeg decodes, or H.264
// with AAC, which the browser decodes through Media Source Extensions. The
// server names the right player page when it knows the stream's codec; the
// page then checks the first PMT that arrives on its own websocket and, if
// the stream is of the other family (it was not live when the page was
// served, or its camera changed), loads the other page in its place.
"use strict";
(function () {
  // PMT stream types of the two families (ISO/IEC 13818-1 table 2-34).
  const families = { 0x01: "mpeg1", 0x02: "mpeg1", 0x03: "mpeg1", 0x04: "mpeg1", 0x1b: "h264", 0x0f: "h264" };

  // Sniffer reads whole, aligned 188-byte packets, message by message,
  // until a PMT names a stream type of either family. Only sections that
  // fit in one packet are read: vw's always do.
  class Sniffer {
    constructor() { this.pmtPIDs = []; this.family = ""; }

    // push reads one message and returns the family once known, else "".
    push(data) {
      if (this.family) return this.family;
      const b = new Uint8Array(data);
      for (let i = 0; i + 188 <= b.length; i += 188) {
        if (b[i] !== 0x47) return "";
        const pid = (b[i + 1] & 0x1f) << 8 | b[i + 2];
        if (!(b[i + 1] & 0x40) || !(b[i + 3] & 0x10)) continue; // no section starts here
        let off = i + 4;
        if (b[i + 3] & 0x20) off += 1 + b[off];
        if (off >= i + 188) continue;
        off += 1 + b[off]; // pointer_field
        if (off + 12 > i + 188) continue;
        const len = (b[off + 1] & 0x0f) << 8 | b[off + 2], end = off + 3 + len - 4; // CRC left out
        if (len < 9 || end + 4 > i + 188) continue;
        if (pid === 0 && b[off] === 0x00) {
          this.pmtPIDs = [];
          for (let j = off + 8; j + 4 <= end; j += 4) {
            if (b[j] || b[j + 1]) this.pmtPIDs.push((b[j + 2] & 0x1f) << 8 | b[j + 3]);
          }
        } else if (b[off] === 0x02 && this.pmtPIDs.includes(pid)) {
          let j = off + 12 + ((b[off + 10] & 0x0f) << 8 | b[off + 11]);
          for (; j + 5 <= end; j += 5 + ((b[j + 3] & 0x0f) << 8 | b[j + 4])) {
            if (families[b[j]]) {
              this.family = families[b[j]];
              return this.family;
            }
          }
        }
      }
      return "";
    }
  }

  // switchTo loads the page of the other player for the same stream,
  // keeping the rest of the address (the token has left it already, into
  // this tab's session storage, where the new page finds it).
  function switchTo(codec) {
    const q = new URLSearchParams(location.search);
    q.set("codec", codec);
    location.replace(location.pathname + "?" + q.toString() + location.hash);
  }

  window.vwCodec = { Sniffer, switchTo };
})();
