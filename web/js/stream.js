// The live event stream. It asks for events from the number the page
// already has, so after a dropped connection nothing is missed and nothing
// comes twice; a new generation (restart, another scenario) means the page
// starts over.

import { streamUrl } from './api.js';

export class Stream {
  /**
   * `position()` returns {since, generation} to continue from; the
   * handlers get the server's frames.
   */
  constructor({ position, onHello, onEvents, onStatus, onConnection }) {
    Object.assign(this, { position, onHello, onEvents, onStatus, onConnection });
    this.socket = null;
    this.retry = 500;
  }

  connect() {
    const { since, generation } = this.position();
    const socket = new WebSocket(streamUrl(since, generation));
    this.socket = socket;
    socket.onopen = () => { this.retry = 500; this.onConnection(true); };
    socket.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.type === 'hello') this.onHello(frame);
      else if (frame.type === 'events') this.onEvents(frame);
      else if (frame.type === 'status') this.onStatus(frame);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.onConnection(false);
      setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 5000);
    };
  }

  /** Drops the connection and connects again from the page's position. */
  resync() {
    const old = this.socket;
    this.socket = null;
    if (old) old.close();
    this.connect();
  }
}
