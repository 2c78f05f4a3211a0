// Line framing of the Device step's browser link (studio/components/board_link/framing.js).
// Run: node --test tests/js   (tests/test_board_link_js.py runs it from pytest)
import { test } from "node:test";
import assert from "node:assert/strict";
import { LineFramer, lineText, concat } from "../../studio/components/board_link/framing.js";

const enc = new TextEncoder();
const bytes = (s) => enc.encode(s);

function run(framer, chunks) {
  const lines = [];
  const sent = [];
  for (const c of chunks) {
    const out = framer.push(c);
    lines.push(...out.lines);
    if (out.send) sent.push(out.send);
  }
  const tail = framer.flush();
  if (tail) sent.push(tail);
  return { lines, relayed: concat(sent.length ? sent : [new Uint8Array(0)]), messages: sent };
}

test("a line split across chunks comes out whole, once", () => {
  const f = new LineFramer();
  const a = f.push(bytes("FS RES"));
  assert.equal(a.lines.length, 0);
  assert.equal(a.send, null, "a partial line is held, not relayed at once");
  assert.equal(lineText(f.pending), "FS RES");
  const b = f.push(bytes("ULT k=0 us=5 y=1\nFS DO"));
  assert.deepEqual(b.lines.map((l) => lineText(l.bytes)), ["FS RESULT k=0 us=5 y=1"]);
  assert.equal(lineText(b.send), "FS RESULT k=0 us=5 y=1\n", "whole lines are relayed as soon as they end");
  assert.equal(lineText(f.flush()), "FS DO", "the held tail goes out on flush");
  const c = f.push(bytes("NE n=1\n"));
  assert.deepEqual(c.lines.map((l) => lineText(l.bytes)), ["FS DONE n=1"]);
  assert.equal(lineText(c.send), "NE n=1\n", "what was flushed is not relayed again");
});

test("CR LF endings, also with the CR and the LF in different chunks", () => {
  const f = new LineFramer();
  const { lines, relayed } = run(f, [bytes("a\r\nb\r"), bytes("\nc\n\r\n")]);
  assert.deepEqual(lines.map((l) => lineText(l.bytes)), ["a", "b", "c", ""]);
  assert.equal(lineText(relayed), "a\r\nb\r\nc\n\r\n", "the relay is byte-exact: Board strips the CR itself");
  assert.ok(lines.every((l) => !l.cut));
});

test("a 1 MB line without an end is relayed in bounded pieces, every byte once, and shown cut", () => {
  const maxLine = 16384;
  const f = new LineFramer({ maxLine });
  const big = new Uint8Array(1024 * 1024).fill(0x41);
  const chunks = [];
  for (let i = 0; i < big.length; i += 4000) chunks.push(big.subarray(i, i + 4000));
  chunks.push(bytes("\nok\n"));
  const { lines, relayed, messages } = run(f, chunks);
  assert.equal(relayed.length, big.length + 4);
  assert.ok(messages.every((m) => m.length <= maxLine + 4000), "no message grows with the line");
  // 1 MB is 64 pieces of maxLine: 63 cut off, and the last ends with the line's own LF.
  const cut = lines.filter((l) => l.cut);
  assert.equal(cut.length, big.length / maxLine - 1);
  assert.ok(cut.every((l) => l.bytes.length === maxLine));
  assert.equal(lines[63].cut, false);
  assert.equal(lines[63].bytes.length, maxLine);
  assert.equal(lines.reduce((n, l) => n + l.bytes.length, 0), big.length + 2);
  assert.equal(lineText(lines[lines.length - 1].bytes), "ok");
});

test("a 1 MB line in one chunk ends in time (no copying per byte)", () => {
  const f = new LineFramer({ maxLine: 16384 });
  const big = new Uint8Array(1024 * 1024 + 1).fill(0x42);
  big[big.length - 1] = 10;
  const out = f.push(big);
  assert.equal(out.send.length, big.length);
  assert.equal(out.lines.length, 64, "63 pieces cut at maxLine, then the rest ended by its LF");
  assert.equal(out.lines.filter((l) => l.cut).length, 63);
});

test("bytes that are not ASCII reach the studio unchanged, even split inside a character", () => {
  const f = new LineFramer();
  const degree = bytes("T=21.5\u00b0C\n");            // the degree sign is two bytes, C2 B0
  const at = degree.indexOf(0xc2) + 1;
  const garbage = new Uint8Array([0xff, 0x00, 0xfe, 0x80, 0x0a]);
  const { lines, relayed } = run(f, [degree.subarray(0, at), degree.subarray(at), garbage]);
  assert.deepEqual(Array.from(relayed), [...degree, ...garbage]);
  assert.equal(lineText(lines[0].bytes), "T=21.5\u00b0C", "the split character is whole again in the line");
  assert.deepEqual(Array.from(lines[1].bytes), [0xff, 0x00, 0xfe, 0x80]);
  assert.ok(lineText(lines[1].bytes).includes("\ufffd"), "shown as replacement characters, not dropped");
});

test("many lines in one chunk, and empty chunks", () => {
  const f = new LineFramer();
  const text = Array.from({ length: 1000 }, (_, i) => `FS RESULT k=${i} us=1 y=0.5`).join("\n") + "\n";
  const { lines, relayed, messages } = run(f, [new Uint8Array(0), bytes(text), new Uint8Array(0)]);
  assert.equal(lines.length, 1000);
  assert.equal(f.lineCount, 1000);
  assert.equal(messages.length, 1);
  assert.equal(lineText(relayed), text);
});

test("maxLine must be positive", () => {
  assert.throws(() => new LineFramer({ maxLine: 0 }), RangeError);
});
