// Line framing for what the board prints, on bytes (not text), so nothing is lost or altered on the way:
// a UTF-8 character split across two USB packets, wrong-baud garbage and NUL bytes reach the studio as
// they left the board, where core.device.Board frames them again and judges them (wrong baud, noise).
//
// push(chunk) answers two things:
//   lines: each complete line (without "\n" and a "\r" before it), for the component's own display;
//          a line longer than maxLine comes out in pieces of at most maxLine bytes, marked cut.
//   send:  the bytes to relay now: everything up to the last line end seen. The partial line after it
//          is held so a message carries whole lines, and sent by flush() after a short quiet spell, or
//          at once when it grows past maxLine (so a board that never ends a line still gets through).
// Every byte pushed is relayed exactly once, in order.

export class LineFramer {
  constructor({ maxLine = 16384 } = {}) {
    if (!(maxLine > 0)) throw new RangeError("maxLine must be positive");
    this.maxLine = maxLine;
    this._parts = [];      // the current display line, as chunks (no copying per byte)
    this._length = 0;
    this._unsent = [];     // bytes not relayed yet (the tail of the current line)
    this._unsentLength = 0;
    this.lineCount = 0;
  }

  push(chunk) {
    const data = chunk instanceof Uint8Array ? chunk : new Uint8Array(chunk);
    const lines = [];
    let start = 0;
    for (;;) {
      const lf = data.indexOf(10, start);
      const end = lf < 0 ? data.length : lf;
      this._addToLine(data.subarray(start, end), lines);
      if (lf < 0) break;
      lines.push({ bytes: this._takeLine(true), cut: false });
      this.lineCount += 1;
      start = lf + 1;
    }
    const lastLf = data.lastIndexOf(10);
    let send = null;
    if (lastLf >= 0) {
      send = concat([...this._unsent, data.subarray(0, lastLf + 1)]);
      this._setUnsent(data.subarray(lastLf + 1));
    } else {
      this._unsent.push(data);
      this._unsentLength += data.length;
    }
    if (this._unsentLength > this.maxLine) {
      const tail = this.flush();
      send = send ? concat([send, tail]) : tail;
    }
    return { lines, send };
  }

  // The held partial line, to relay after a quiet spell (null when nothing is held).
  flush() {
    if (!this._unsentLength) return null;
    const out = concat(this._unsent);
    this._setUnsent(new Uint8Array(0));
    return out;
  }

  get hasUnsent() {
    return this._unsentLength > 0;
  }

  // The partial line received so far (for display: "no line end yet").
  get pending() {
    return concat(this._parts);
  }

  _setUnsent(bytes) {
    this._unsent = bytes.length ? [bytes] : [];
    this._unsentLength = bytes.length;
  }

  _addToLine(bytes, lines) {
    let rest = bytes;
    while (this._length + rest.length > this.maxLine) {
      const room = this.maxLine - this._length;
      this._parts.push(rest.subarray(0, room));
      this._length += room;
      lines.push({ bytes: this._takeLine(false), cut: true });
      rest = rest.subarray(room);
    }
    if (rest.length) {
      this._parts.push(rest);
      this._length += rest.length;
    }
  }

  _takeLine(ended) {
    let line = concat(this._parts);
    this._parts = [];
    this._length = 0;
    if (ended && line.length && line[line.length - 1] === 13) line = line.subarray(0, line.length - 1);
    return line;
  }
}

export function concat(parts) {
  if (parts.length === 1) return parts[0].slice();
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const decoder = new TextDecoder("utf-8", { fatal: false });

// A line as text for the display: UTF-8 where it is UTF-8, U+FFFD where it is not (the studio shows
// the same bytes as \xNN in its log).
export function lineText(bytes) {
  return decoder.decode(bytes);
}
