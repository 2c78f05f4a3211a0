// A stand-in for the browser's Web Serial API, put in front of the link component's own scripts by the
// test's server (tests/webserial_server.py). It is the part the test machine cannot give:
// a USB port. Everything it hands out is a real stream: open() connects to tests/browser_port.UsbBridge
// over a WebSocket, which opens the pty of the device emulator (or a scripted board) with pyserial.
// The component under test (studio/components/board_link) cannot tell it from navigator.serial:
// requestPort needs a user gesture, honours filters, and fails the way Chrome does (NotFoundError when
// the chooser is cancelled, SecurityError when refused, NetworkError when the port is busy); an unplug
// errors the readable stream with NetworkError "The device has been lost." and nulls port.readable.
// With ?webserial=none in the page's address it plays a browser without Web Serial (Firefox, Safari).
(() => {
  if (!location.pathname.includes("/component/")) return;
  if (new URLSearchParams(window.top.location.search).get("webserial") === "none") {
    delete Navigator.prototype.serial;
    return;
  }
  const descriptor = Object.getOwnPropertyDescriptor(Navigator.prototype, "serial");
  window.__fsRealSerial = descriptor && descriptor.get ? descriptor.get.call(navigator) : undefined;
  const shim = (window.__fsShim = {
    bridge: "__BRIDGE__",
    next: "pick",
    info: { usbVendorId: 0x303a, usbProductId: 0x1001 },
    requests: [],
    opens: [],
    port: null,
  });
  const granted = new Set();

  class ShimPort extends EventTarget {
    constructor(info) {
      super();
      this._info = info;
      this.readable = null;
      this.writable = null;
      this._ws = null;
    }
    getInfo() {
      return { ...this._info };
    }
    async open(options) {
      if (this._ws) throw new DOMException("The port is already open.", "InvalidStateError");
      const baud = options && options.baudRate;
      if (!(baud > 0)) throw new TypeError("Failed to execute 'open' on 'SerialPort': baudRate required.");
      shim.opens.push(baud);
      const ws = new WebSocket(`${shim.bridge}/?baud=${baud}`);
      ws.binaryType = "arraybuffer";
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onclose = () => reject(new DOMException("Failed to open serial port.", "NetworkError"));
      });
      this._ws = ws;
      let controller;
      this.readable = new ReadableStream({ start: (c) => { controller = c; } });
      this.writable = new WritableStream({ write: (chunk) => ws.send(chunk) });
      ws.onmessage = (e) => controller.enqueue(new Uint8Array(e.data));
      ws.onclose = () => {
        if (this._ws !== ws) return;  // closed by close(), not pulled
        // The cable was pulled: the port has no streams any more, and a pending read fails.
        this.readable = null;
        this.writable = null;
        this._ws = null;
        try {
          controller.error(new DOMException("The device has been lost.", "NetworkError"));
        } catch (e) { /* already closed */ }
      };
    }
    async close() {
      const ws = this._ws;
      this._ws = null;
      this.readable = null;
      this.writable = null;
      if (ws) ws.close();
    }
  }

  const serial = new EventTarget();
  serial.requestPort = async (options = {}) => {
    shim.requests.push(JSON.parse(JSON.stringify(options)));
    if (!navigator.userActivation.isActive) {
      throw new DOMException("Must be handling a user gesture to show a permission request.", "SecurityError");
    }
    const next = shim.next;
    shim.next = "pick";
    if (next === "cancel") throw new DOMException("No port selected by the user.", "NotFoundError");
    if (next === "deny") throw new DOMException("Access denied.", "SecurityError");
    const filters = options.filters || [];
    const fits = !filters.length || filters.some((f) => f.usbVendorId === shim.info.usbVendorId &&
      (f.usbProductId === undefined || f.usbProductId === shim.info.usbProductId));
    if (!fits) throw new DOMException("No port selected by the user.", "NotFoundError");
    if (!shim.port) shim.port = new ShimPort(shim.info);
    granted.add(shim.port);
    return shim.port;
  };
  serial.getPorts = async () => [...granted];
  Object.defineProperty(Navigator.prototype, "serial", { get: () => serial, configurable: true });
})();
