// Runs before textual-serve's client (textual.js), which connects on window.onload.
(function () {
  "use strict";
  // The session's websocket is on the address the browser used: an SSH tunnel to another
  // local port, or a proxy, works as well as the server's own address.
  const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
  const socketUrl = scheme + window.location.host + "/ws";

  // Show why the server closed a session (idle, too many sessions, stopped): its close reason.
  const NativeWebSocket = window.WebSocket;
  function TuiwizWebSocket(url, protocols) {
    const socket = protocols === undefined ? new NativeWebSocket(url) : new NativeWebSocket(url, protocols);
    // Keys go to the terminal from the start, and the app learns that it has the focus (it
    // hides its footer until then). Not before its first frame: when it starts, the app
    // assumes it is in the background, whatever it was told before.
    let shown = false;
    socket.addEventListener("message", function (event) {
      if (shown || typeof event.data === "string" || event.data.byteLength <= 10) {
        return; // textual.js also counts a frame from 11 bytes on (its "-first-byte")
      }
      shown = true;
      const input = document.querySelector(".xterm-helper-textarea");
      if (input && document.activeElement === input) {
        socket.send(JSON.stringify(["focus"]));
      } else if (input) {
        input.focus(); // textual.js tells the app
      }
    });
    socket.addEventListener("close", function (event) {
      if (event.reason) {
        document.getElementById("closed-reason").textContent = event.reason;
      }
    });
    return socket;
  }
  TuiwizWebSocket.prototype = NativeWebSocket.prototype;
  Object.assign(TuiwizWebSocket, {
    CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3,
  });
  window.WebSocket = TuiwizWebSocket;

  document.addEventListener("DOMContentLoaded", function () {
    const terminal = document.getElementById("terminal");
    terminal.dataset.sessionWebsocketUrl = socketUrl;
    const size = parseInt(new URLSearchParams(window.location.search).get("fontsize"), 10);
    if (size >= 6 && size <= 64) {
      terminal.dataset.fontSize = String(size);
    }
    document.getElementById("restart").addEventListener("click", function () {
      window.location.reload();
    });
  });
})();
