// CloudHelp browser protocol library: the signaling connection, the WebRTC call and file
// transfer. It knows nothing of the page: kiosk.js and staff.js build their UIs on it.
// The protocol is documented in docs/protocol.md.
// @ts-check

const PROTOCOL_VERSION = 1;
const ACK_MS = 5000;
const STATS_MS = 5000;
/** The pre-call check's signaling round trip is the median of this many pings (one server pause is not a slow network). */
const SIGNALING_PINGS = 3;
const RETRY_MS = [500, 1000, 2000, 4000, 8000];
/** A server going away (1001: it stops; with several nodes another takes the session over) is left at once, spread over this. */
const GOING_AWAY_MS = 100;
const RECOVERY_MS = 15000;
/**
 * No frame from the server for this long (it answers the pings sent every ACK_MS): the socket is
 * taken for dead and a new one resumes the session. A cut link tells nobody; a socket left to
 * TCP's retries could sit silent for a minute after the link is back.
 */
const SILENT_MS = 15000;
/** The peer's candidates kept while its description is not set yet, at most this many (a few per path). */
const MAX_PENDING_CANDIDATES = 100;
/** The page's messages kept until the server says it has them, at most this many characters. */
const OUTBOX_CHARS = 256 * 1024;
/**
 * Messages that are not numbered nor kept: sending them again after a resume means nothing —
 * the session's own, a periodic summary (the next one replaces it; a burst of old ones would be
 * refused as too frequent), and the pre-call check's, which gives up after a few seconds.
 */
const UNNUMBERED = new Set(["hello", "ping", "bye", "call.stats", "netcheck.offer", "netcheck.result"]);

/**
 * @typedef {{type: string, seq?: number, [key: string]: any}} Frame
 * @typedef {{kind: "kiosk", credential: string} |
 *   {kind: "staff", token?: string, purpose?: "console" | "board"}} Auth
 */

/** Where a page keeps its session across a reload (per tab; one entry per kind of page). */
const RESUME_KEY = "cloudhelp.resume.";

/**
 * One protocol session over a WebSocket. It reconnects and resumes by itself when the socket
 * drops; messages missed meanwhile are replayed by the server.
 *
 * What the page sends is numbered too (`cseq`, except what `UNNUMBERED` lists) and kept in an outbox
 * until the server says it has it (`received`, in `pong` and in a resumed `welcome`): after a
 * resume, what a dying socket swallowed (a hang-up pressed during a network blip) and what was
 * sent while offline goes out again, in order; the server drops what it already had. A new
 * session (the old one lost) or a session re-created after its server died (no `received`)
 * empties the outbox: those messages are not sent.
 *
 * Reload: the session id and resume token are kept in sessionStorage (per tab, per `auth.kind`
 * and `auth.purpose`). A page created after a reload resumes that session with
 * `resume.reloaded` (nothing replayed: the server sends the current state, and `joined` again
 * when the session is in a call); `connection.reloaded` is then true and the welcome frame has
 * `resumed: true`. If the session is gone, a new one starts ("session-lost").
 *
 * Snapshots never go backwards: a `ticket` (or `ring`) frame older than the newest version of
 * that ticket seen so far (from `ticket`, `ring`, `ring.cancelled`, `wrapup`) is dropped before
 * the page sees it.
 *
 * Events: "welcome" (detail: welcome frame), "message" (detail: frame), "unsent" (messages the
 * page sent were dropped without reaching the server, or without knowing whether they did: its
 * session was lost or re-created on another server; a page waiting for their effect stops), "state"
 * (detail: "connecting" | "online" | "reconnecting" | "closed"), "session-lost" (the server no
 * longer knows the session: a new one was started), "replaced" (closed 4009 by the server: the
 * same console or kiosk was opened elsewhere; `connect()` takes it back), "busy" (detail: a
 * `console_busy` or `kiosk_busy` error frame: this console, or kiosk page, was refused while the
 * same console or kiosk in another window is in a call; `connect()` asks again), "auth-failed"
 * (detail: error frame),
 * "unavailable" (detail: a `service_unavailable` error frame: the server's database is out for a
 * moment; a refused hello is retried by itself, `unavailable` stays true until the next welcome).
 */
export class Connection extends EventTarget {
  /** @param {{url?: string, auth: Auth}} options */
  constructor({ url, auth }) {
    super();
    this.url = url || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
    this.auth = auth;
    this.storageKey = RESUME_KEY + auth.kind + ("purpose" in auth && auth.purpose ? `.${auth.purpose}` : "");
    /** @type {{session: string, token: string} | null} the session a reloaded page resumes */
    this.kept = readKept(this.storageKey);
    /** True once this page resumed the session it had before a reload. */
    this.reloaded = false;
    /** @type {Map<number, number>} newest version seen per ticket id */
    this.ticketVersions = new Map();
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {Frame | null} */
    this.welcome = null;
    this.lastSeq = 0;
    /** True from a welcome until the socket closes: what is sent now reaches the server. */
    this.online = false;
    this.closedByUs = false;
    this.attempt = 0;
    /** True from a `service_unavailable` error until the next welcome. */
    this.unavailable = false;
    /** @type {number | undefined} */
    this.ackTimer = undefined;
    /** When the socket last brought a frame (Date.now()). */
    this.heardAt = 0;
    /** The `cseq` of the last message the page sent. */
    this.sentSeq = 0;
    /** @type {{cseq: number, text: string}[]} sent and not yet known to have arrived */
    this.outbox = [];
    this.outboxChars = 0;
    /** @type {number | undefined} the pending reconnect attempt */
    this.retryTimer = undefined;
    // The browser says the network is back: reconnect now rather than at the next backoff step.
    window.addEventListener("online", () => {
      if (this.retryTimer === undefined || this.closedByUs) return;
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      this.open();
    });
  }

  get sessionId() {
    return this.welcome ? this.welcome.session : null;
  }

  connect() {
    this.closedByUs = false;
    this.open();
  }

  /** @param {string} state */
  setState(state) {
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }

  open() {
    this.setState(this.welcome ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      const hello = this.welcome
        ? { type: "hello", v: PROTOCOL_VERSION,
            resume: { session: this.welcome.session, token: this.welcome.token, last_seq: this.lastSeq } }
        : this.kept
          ? { type: "hello", v: PROTOCOL_VERSION,
              resume: { session: this.kept.session, token: this.kept.token, reloaded: true } }
          : { type: "hello", v: PROTOCOL_VERSION, auth: this.auth };
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (event) => {
      this.heardAt = Date.now();
      const frame = parseFrame(event.data, "type", "WebSocket");
      if (frame) this.receive(frame);
    };
    ws.onclose = (event) => {
      if (this.ws === ws) this.closed(event.code);
    };
  }

  /** The socket closed with `code`: reconnect (and resume) unless the session is over. @param {number} code */
  closed(code) {
    this.online = false;
    clearInterval(this.ackTimer);
    if (this.closedByUs || code === 4001 || code === 4003 || code === 4009) {
      if (code !== 4009 || this.closedByUs) this.forget();  // 4009: another page has it
      this.setState("closed");
      if (code === 4003) this.dispatchEvent(new CustomEvent("auth-failed", { detail: { code: "revoked" } }));
      if (code === 4009 && !this.closedByUs) this.dispatchEvent(new CustomEvent("replaced"));
      return;
    }
    const delay = code === 1001 && this.attempt === 0
      ? Math.random() * GOING_AWAY_MS
      : RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)];
    this.attempt += 1;
    this.setState("reconnecting");
    this.retryTimer = window.setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.closedByUs) this.open();
    }, delay);
  }

  /** Ping the server (acknowledging what arrived), or give up a socket silent for SILENT_MS. */
  tick() {
    const ws = this.ws;
    if (ws && Date.now() - this.heardAt > SILENT_MS) {
      this.ws = null;  // its close event, whenever it comes, is this one's
      ws.close();
      this.closed(1006);
      return;
    }
    this.send({ type: "ping", seq: this.lastSeq });
  }

  /** @param {Frame} frame */
  receive(frame) {
    if (frame.type === "welcome") {
      const fresh = !frame.resumed;
      if (fresh) this.lastSeq = 0;
      if (!this.welcome && this.kept && frame.resumed) this.reloaded = true;
      this.resend(frame);
      this.kept = null;
      this.welcome = frame;
      this.online = true;
      this.keep(frame);
      this.attempt = 0;
      this.unavailable = false;
      this.setState("online");
      clearInterval(this.ackTimer);
      this.heardAt = Date.now();
      this.ackTimer = window.setInterval(() => this.tick(), ACK_MS);
      this.dispatchEvent(new CustomEvent("welcome", { detail: frame }));
      return;
    }
    if (frame.type === "error" && frame.code === "service_unavailable") {
      // The server's database is out for a moment (docs/protocol.md): say so and try again. A
      // refused hello is tried again on a new socket (after the usual reconnect delay); any
      // other refused operation goes to the page, which repeats it when it makes sense.
      this.unavailable = true;
      this.dispatchEvent(new CustomEvent("unavailable", { detail: frame }));
      if (frame.ref === "hello") {
        if (this.ws) this.ws.close();
        return;
      }
    }
    if (frame.type === "error" && frame.ref === "hello") {
      if (frame.code === "no_such_session" || frame.code === "resume_gap") {
        // The server no longer has the session: start a new one (a waiting ticket is found
        // again by the kiosk's credential).
        this.welcome = null;
        this.kept = null;
        this.forget();
        this.lastSeq = 0;
        this.sentSeq = 0;
        this.dropUnsent();
        this.ws && this.ws.send(JSON.stringify({ type: "hello", v: PROTOCOL_VERSION, auth: this.auth }));
        this.dispatchEvent(new CustomEvent("session-lost"));
        return;
      }
      const busy = frame.code === "console_busy" || frame.code === "kiosk_busy";
      this.dispatchEvent(new CustomEvent(busy ? "busy" : "auth-failed", { detail: frame }));
      return;
    }
    if (typeof frame.seq === "number") this.lastSeq = frame.seq;
    if (frame.type === "pong" && typeof frame.received === "number") this.arrived(frame.received);
    if (this.isStale(frame)) return;
    this.dispatchEvent(new CustomEvent("message", { detail: frame }));
  }

  /**
   * Whether a frame about a ticket is older than what this page already knows of it; records
   * the newest version otherwise. Equal versions pass (position and estimate change within one).
   * @param {Frame} frame
   */
  isStale(frame) {
    let id = null;
    let version = null;
    if ((frame.type === "ticket" || frame.type === "ring") && frame.ticket) {
      id = frame.ticket.id;
      version = frame.ticket.version;
    } else if (frame.type === "ring.cancelled" || frame.type === "wrapup") {
      id = frame.ticket;
      version = frame.version;
    }
    if (typeof id !== "number" || typeof version !== "number") return false;
    const known = this.ticketVersions.get(id);
    if (known !== undefined && version < known) return true;
    this.ticketVersions.set(id, version);
    return false;
  }

  /** Keep the session for a reload of this page (this tab only). @param {Frame} welcome */
  keep(welcome) {
    try {
      sessionStorage.setItem(this.storageKey, JSON.stringify({ session: welcome.session, token: welcome.token }));
    } catch (_) { /* storage unavailable: a reload starts a new session */ }
  }

  forget() {
    try { sessionStorage.removeItem(this.storageKey); } catch (_) { /* nothing kept */ }
  }

  /**
   * Send a message. Whether it was written now; a numbered one that was not (offline, or the
   * server refusing hellos for a moment) goes out after the resume.
   * @param {Frame} message
   */
  send(message) {
    let text;
    if (UNNUMBERED.has(message.type)) {
      text = JSON.stringify(message);
    } else {
      this.sentSeq += 1;
      text = JSON.stringify({ ...message, cseq: this.sentSeq });
      this.outbox.push({ cseq: this.sentSeq, text });
      this.outboxChars += text.length;
      while (this.outboxChars > OUTBOX_CHARS && this.outbox.length > 1) this.forgetOldest();
    }
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(text);
      return true;
    }
    return false;
  }

  /** The server has every message up to `received`: they need not be kept. @param {number} received */
  arrived(received) {
    while (this.outbox.length && this.outbox[0].cseq <= received) this.forgetOldest();
  }

  /** The oldest kept message is no longer kept. */
  forgetOldest() {
    this.outboxChars -= /** @type {{text: string}} */ (this.outbox.shift()).text.length;
  }

  /**
   * After a welcome: send again, in order, what the session has not received (for a new
   * session: what the page sent before its welcome; the server drops what it already had). A
   * session re-created elsewhere after its server died (resumed, no `received`) gets none of
   * it: the dead server may have handled it.
   * @param {Frame} welcome
   */
  resend(welcome) {
    if (welcome.resumed && typeof welcome.received !== "number") {
      this.dropUnsent();
      return;
    }
    if (typeof welcome.received === "number") {
      if (welcome.received > this.sentSeq) this.sentSeq = welcome.received;
      this.arrived(welcome.received);
    }
    for (const { text } of this.outbox) this.ws?.send(text);
  }

  /** Forget the messages not yet known to have arrived (they were for a session that is gone). */
  emptyOutbox() {
    this.outbox = [];
    this.outboxChars = 0;
  }

  /** Forget them, and tell the page when there were any ("unsent"). */
  dropUnsent() {
    const dropped = this.outbox.length;
    this.emptyOutbox();
    if (dropped) this.dispatchEvent(new CustomEvent("unsent", { detail: dropped }));
  }

  /** Drop the socket without ending the session (tests and network changes). */
  dropSocket() {
    if (this.ws) this.ws.close();
  }

  close() {
    this.closedByUs = true;
    clearInterval(this.ackTimer);
    this.forget();
    this.emptyOutbox();
    this.send({ type: "bye" });
    if (this.ws) this.ws.close();
  }
}

/**
 * A WebRTC call with one peer, negotiated with the perfect-negotiation pattern over the
 * connection's offer/answer/candidate messages (trickle ICE).
 *
 * Transceivers, in m-line order: audio, camera video, screen video. The screen transceiver
 * exists from the first offer, so sharing a screen is a replaceTrack — no renegotiation, no
 * dead m-lines, and the camera keeps flowing beside the screen (docs/browser.md).
 *
 * Candidates that arrive before the remote description they belong to (before the offer or
 * answer is set, or while it is being set) wait in `pendingCandidates` and are added once it is:
 * added at once, they would fail ("remote description was null") and be lost.
 *
 * When the peer's page goes away (`peer_reconnecting`) the call says "reconnecting" at once and
 * does not give up while the server waits for it; when it comes back after a reload
 * (`peer_back` with `reloaded`) the call starts its media anew on a new RTCPeerConnection (same
 * Call object, same remote streams, a new data channel: "channel" fires again).
 *
 * Events: "track" (detail: {kind: "camera"|"screen"|"audio", stream}), "state" (detail:
 * "connecting"|"connected"|"reconnecting"|"failed"|"closed"), "app" (detail: data from the peer),
 * "channel", "channel-open", "peer" (detail: "reconnecting" | "back" | "reloaded").
 */
export class Call extends EventTarget {
  /**
   * @param {Connection} connection
   * @param {{initiator: boolean, peer: string, iceServers?: RTCIceServer[], stream?: MediaStream}} options
   */
  constructor(connection, { initiator, peer, iceServers, stream }) {
    super();
    this.connection = connection;
    this.peer = peer;
    this.initiator = initiator;
    this.polite = !initiator;
    this.closed = false;
    this.peerAway = false;
    /** @type {number | undefined} */
    this.failTimer = undefined;
    /** @type {number | undefined} */
    this.statsTimer = undefined;
    this.iceServers = iceServers;
    this.stream = stream || null;
    this.remoteStreams = { audio: new MediaStream(), camera: new MediaStream(), screen: new MediaStream() };
    /** @type {RTCPeerConnection} */
    this.pc = /** @type {any} */ (null);
    /** @type {RTCDataChannel} */
    this.channel = /** @type {any} */ (null);
    /** @type {RTCRtpTransceiver[]} */
    this.transceivers = [];
    this.setup();
    this.onMessage = (/** @type {any} */ event) => this.handle(event.detail);
    connection.addEventListener("message", this.onMessage);
    this.onWelcome = (/** @type {any} */ event) => {
      this.offerAgain(event);
      if (this.failTimer !== undefined) this.armFailure();  // the restart can go through now
    };
    connection.addEventListener("welcome", this.onWelcome);
  }

  /**
   * After the signaling socket came back to a session re-created on another server (its own
   * died, and with it what it had received: the connection's outbox is not sent again), an
   * offer still unanswered may have been lost: send it again — with the candidates gathered
   * since, which the description now carries. A plain resume needs nothing: the outbox did it.
   * @param {any} event
   */
  offerAgain(event) {
    const offer = this.pc.localDescription;
    if (typeof event.detail?.received === "number") return;
    if (this.closed || this.pc.signalingState !== "have-local-offer" || !offer) return;
    this.signal({ type: "offer", sdp: offer.sdp });
  }

  /** A new RTCPeerConnection (at the start, and after the peer's page was reloaded). */
  setup() {
    const connection = this.connection;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.transceivers = [];
    /** @type {(RTCIceCandidateInit | null)[]} the peer's candidates waiting for its description */
    this.pendingCandidates = [];
    const pc = new RTCPeerConnection({
      iceServers: this.iceServers || connection.welcome?.ice_servers || [],
      iceTransportPolicy: connection.welcome?.ice_transport_policy || "all",
    });
    this.pc = pc;

    if (this.initiator) {
      // The initiator lays out every m-line in the first offer; the other side only answers,
      // so the first exchange never collides.
      const audio = pc.addTransceiver("audio", { direction: "sendrecv" });
      const camera = pc.addTransceiver("video", { direction: "sendrecv" });
      const screen = pc.addTransceiver("video", { direction: "sendrecv" });
      this.transceivers = [audio, camera, screen];
      this.openChannel();
      this.attachLocal();
    }

    pc.onnegotiationneeded = async () => {
      if (pc !== this.pc) return;
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        this.signal({ type: "offer", sdp: pc.localDescription?.sdp });
      } catch (error) {
        console.error("negotiation failed", error);
      } finally {
        this.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (pc !== this.pc) return;
      this.signal({ type: "candidate", candidate: candidate ? candidate.toJSON() : null });
    };
    pc.ontrack = (event) => {
      const index = pc.getTransceivers().indexOf(event.transceiver);
      const kind = index === 0 ? "audio" : index === 1 ? "camera" : "screen";
      const target = this.remoteStreams[kind];
      target.getTracks().forEach((t) => target.removeTrack(t));
      target.addTrack(event.track);
      this.dispatchEvent(new CustomEvent("track", { detail: { kind, stream: target } }));
    };
    pc.oniceconnectionstatechange = () => {
      if (pc !== this.pc) return;
      const state = pc.iceConnectionState;
      if (state === "failed") {
        this.emitState("reconnecting");
        this.restartIce();
      } else if (state === "disconnected") {
        this.emitState("reconnecting");
      } else if ((state === "connected" || state === "completed") && !this.peerAway) {
        this.emitState("connected");
      }
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc || pc.connectionState !== "failed") return;
      // Give an ICE restart a chance before calling the call lost.
      this.emitState("reconnecting");
      this.restartIce();
      this.armFailure();
    };
    this.emitState("connecting");
  }

  /**
   * Restart ICE — from the initiator only: the other side answers its offer. Were both to
   * restart, their offers would collide, and the polite side's rollback of its own offer left
   * Chromium 156 decoding the initiator's video without showing it (a frozen picture).
   */
  restartIce() {
    if (this.initiator) this.pc.restartIce();
  }

  /**
   * Call the media lost if it has not recovered in time — never while the peer's page is
   * away, nor while this page's signaling is down (the ICE restart that would recover the
   * media needs it: once it, or the peer, is back, the media gets a whole RECOVERY_MS again, see
   * `onWelcome` and `onPeer`).
   */
  armFailure() {
    clearTimeout(this.failTimer);
    this.failTimer = window.setTimeout(() => {
      this.failTimer = undefined;
      if (this.closed || this.pc.connectionState === "connected") return;
      if (this.peerAway || !this.connection.online) this.armFailure();
      else this.emitState("failed");
    }, RECOVERY_MS);
  }

  /** The peer's page went away, came back, or came back reloaded. @param {Frame} message */
  onPeer(message) {
    if (message.type === "peer_reconnecting") {
      this.peerAway = true;
      this.emitState("reconnecting");
      this.dispatchEvent(new CustomEvent("peer", { detail: "reconnecting" }));
      return;
    }
    this.peerAway = false;
    if (message.reloaded) {
      // The peer lost its RTCPeerConnection: start the media again on a new one. The
      // initiator sends the new offer; the other side answers it.
      clearTimeout(this.failTimer);
      this.failTimer = undefined;
      const old = this.pc;
      this.setup();
      old.close();
      this.dispatchEvent(new CustomEvent("peer", { detail: "reloaded" }));
      return;
    }
    if (this.pc.iceConnectionState === "connected" || this.pc.iceConnectionState === "completed") {
      this.emitState("connected");
    } else if (this.initiator) {
      this.pc.restartIce();
    }
    // As when this page's own signaling comes back: the restart the peer's return allows gets
    // a whole RECOVERY_MS (a timer armed during the absence could otherwise fire a moment
    // after it, and hang up a call that was recovering).
    if (this.failTimer !== undefined) this.armFailure();
    this.dispatchEvent(new CustomEvent("peer", { detail: "back" }));
  }

  /** The data channel for files, negotiated in the SDP (id 0) rather than announced in-band. */
  openChannel() {
    this.channel = this.pc.createDataChannel("files", { negotiated: true, id: 0, ordered: true });
    this.channel.binaryType = "arraybuffer";
    this.channel.onopen = () => this.dispatchEvent(new Event("channel-open"));
    this.dispatchEvent(new Event("channel"));
  }

  /** @param {string} state */
  emitState(state) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }

  /** @param {any} message */
  signal(message) {
    this.connection.send({ ...message, to: this.peer });
  }

  attachLocal() {
    if (!this.stream) return;
    const [audio, camera] = this.transceivers;
    const mic = this.stream.getAudioTracks()[0] || null;
    const cam = this.stream.getVideoTracks()[0] || null;
    audio.sender.replaceTrack(mic);
    camera.sender.replaceTrack(cam);
    this.keepResolution(camera.sender);
  }

  /** @param {RTCRtpSender} sender */
  keepResolution(sender) {
    // Documents must stay legible: prefer dropping frames to dropping resolution.
    const params = sender.getParameters();
    params.degradationPreference = "maintain-resolution";
    sender.setParameters(params).catch(() => {});
  }

  /** @param {Frame} message */
  async handle(message) {
    if (this.closed) return;
    if ((message.type === "peer_reconnecting" || message.type === "peer_back") && message.session === this.peer) {
      this.onPeer(message);
      return;
    }
    if (message.from !== this.peer) return;
    try {
      if (message.type === "offer" || message.type === "answer") {
        const description = { type: message.type, sdp: message.sdp };
        const collision = description.type === "offer" &&
          (this.makingOffer || this.pc.signalingState !== "stable");
        this.ignoreOffer = !this.polite && collision;
        if (this.ignoreOffer) return;
        const pc = this.pc;
        await pc.setRemoteDescription(description);
        if (pc !== this.pc) return;  // the peer's page was reloaded meanwhile: a new connection
        await this.addPendingCandidates();
        if (description.type === "offer") {
          if (!this.transceivers.length) {
            this.transceivers = this.pc.getTransceivers().slice(0, 3);
            this.transceivers.forEach((t) => { t.direction = "sendrecv"; });
            this.openChannel();
            this.attachLocal();
          }
          await this.pc.setLocalDescription();
          this.signal({ type: "answer", sdp: this.pc.localDescription?.sdp });
        }
      } else if (message.type === "candidate") {
        if (!this.pc.remoteDescription) {
          // Its description is not set yet (or is being set): added once it is.
          if (this.pendingCandidates.length < MAX_PENDING_CANDIDATES) this.pendingCandidates.push(message.candidate || null);
          return;
        }
        await this.addCandidate(message.candidate || null);
      } else if (message.type === "app") {
        // Whatever the peer sends is data: the pages get an object with a string `kind` or nothing.
        const data = message.data;
        if (isRecord(data) && typeof data.kind === "string") this.dispatchEvent(new CustomEvent("app", { detail: data }));
        else console.warn("dropped an app message without a kind", data);
      }
    } catch (error) {
      console.error("signaling message failed", message.type, error);
    }
  }

  /** @param {RTCIceCandidateInit | null} candidate the peer's, or null for the end of them */
  async addCandidate(candidate) {
    try {
      await this.pc.addIceCandidate(candidate || undefined);
    } catch (error) {
      if (!this.ignoreOffer) throw error;  // a candidate of an offer ignored (glare) may fail
    }
  }

  /** The candidates that came before the remote description, now that it is set, in order. */
  async addPendingCandidates() {
    const waiting = this.pendingCandidates.splice(0);
    for (const candidate of waiting) {
      try {
        await this.addCandidate(candidate);
      } catch (error) {
        console.error("signaling message failed", "candidate", error);
      }
    }
  }

  /** @param {MediaStreamTrack | null} track */
  async shareScreen(track) {
    const screen = this.transceivers[2];
    await screen.sender.replaceTrack(track);
    if (track) this.keepResolution(screen.sender);
    this.sendApp({ kind: "screen", on: Boolean(track) });
  }

  /** Replace the camera (e.g. with a document camera). @param {MediaStreamTrack} track */
  async replaceCamera(track) {
    await this.transceivers[1].sender.replaceTrack(track);
  }

  /** @param {any} data */
  sendApp(data) {
    this.signal({ type: "app", data });
  }

  /**
   * Send the server a summary of the call's media every `periodMs` (`call.stats`,
   * docs/protocol.md): round trip, loss, frame rate and freezes of the received video, and
   * whether the path is relayed. Stops when the call closes.
   * @param {number} [periodMs]
   */
  reportStats(periodMs = STATS_MS) {
    clearInterval(this.statsTimer);
    /** @type {Map<string, any>} */
    let previous = new Map();
    this.statsTimer = window.setInterval(async () => {
      if (this.closed || this.pc.connectionState !== "connected") return;
      try {
        const report = await this.pc.getStats();
        if (this.closed) return;  // the call ended while the figures were gathered
        const summary = summarizeStats(report, previous);
        const first = previous.size === 0;
        previous = summary.seen;
        // The first look only marks the start: every summary covers a whole period. (One taken
        // as the link came up measured video barely flowing — a low frame rate, and 信号差 on
        // the console for the first 15 s of a good call, a README walk found.)
        if (!first) this.connection.send({ type: "call.stats", ...summary.stats });
      } catch (error) {
        console.warn("call statistics failed", error);
      }
    }, periodMs);
  }

  close() {
    this.closed = true;
    clearTimeout(this.failTimer);
    clearInterval(this.statsTimer);
    this.connection.removeEventListener("message", this.onMessage);
    this.connection.removeEventListener("welcome", this.onWelcome);
    this.pc.close();
    this.emitState("closed");
  }
}

/** @param {unknown} value @returns {value is Record<string, any>} a JSON object (not null, not an array) */
function isRecord(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * A frame from the network (WebSocket or data channel) as a JSON object whose `field` is a
 * string, or null: a frame that is no JSON text, or no such object, is dropped with a warning
 * and never throws out of the socket's or channel's handler (the connection goes on).
 * @param {unknown} data @param {"type" | "kind"} field @param {string} where
 * @returns {Record<string, any> | null}
 */
export function parseFrame(data, field, where) {
  let frame;
  try {
    if (typeof data !== "string") throw new TypeError(`a ${Object.prototype.toString.call(data)} frame`);
    frame = JSON.parse(data);
  } catch (error) {
    console.warn(`${where}: dropped a frame that is not JSON text`, String(error));
    return null;
  }
  if (isRecord(frame) && typeof frame[field] === "string") return frame;
  console.warn(`${where}: dropped a frame without a string "${field}"`, data.slice(0, 200));
  return null;
}

/** @param {string} key @returns {{session: string, token: string} | null} */
function readKept(key) {
  try {
    const kept = JSON.parse(sessionStorage.getItem(key) || "null");
    return kept && typeof kept.session === "string" && typeof kept.token === "string" ? kept : null;
  } catch (_) {
    return null;
  }
}

/** @param {BufferSource} buffer */
export async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return Array.from(new Uint8Array(digest)).map((b) => b.toString(16).padStart(2, "0")).join("");
}

const HIGH_WATER = 4 * 1024 * 1024;
const LOW_WATER = 1024 * 1024;
/** The largest file sent in a call: the most the server keeps (cloudhelp/http/file_routes.py). */
export const MAX_FILE_BYTES = 25 * 1024 * 1024;

/**
 * The type of a file told by its first bytes (magic numbers), never by what its sender claims:
 * "image/jpeg", "image/png", "image/webp" or "application/pdf" — the types the pages show and
 * the server checks (cloudhelp/store/filestore.py has the same signatures) — or null for
 * anything else (kept on the server as application/octet-stream, never shown).
 * @param {Uint8Array} head the file's first bytes (12 are enough)
 * @returns {string | null}
 */
export function sniffType(head) {
  const at = (/** @type {number} */ offset, /** @type {string} */ ascii) =>
    [...ascii].every((c, i) => head[offset + i] === c.charCodeAt(0));
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return "image/jpeg";
  if (head[0] === 0x89 && at(1, "PNG\r\n\x1a\n")) return "image/png";
  if (at(0, "RIFF") && at(8, "WEBP")) return "image/webp";
  if (at(0, "%PDF-")) return "application/pdf";
  return null;
}

/** The type the server keeps a file under when it is no photo or PDF (filestore.OTHER_TYPE). */
export const OTHER_TYPE = "application/octet-stream";

/**
 * How a page shows a file the server kept (GET /api/v1/tickets/{id}/files): its `content_type`
 * when that is a photo or PDF (the server checked its first bytes, as sniffType does), or null
 * for any other file — listed by name and size, never shown.
 * @param {string} contentType
 * @returns {string | null}
 */
export function shownType(contentType) {
  return ["image/jpeg", "image/png", "image/webp", "application/pdf"].includes(contentType) ? contentType : null;
}

/**
 * File transfer over a call's data channel: a JSON header, binary chunks no larger than the
 * negotiated maximum message size, a JSON end marker carrying the SHA-256 (hashed while the
 * chunks go out); the receiver checks it and answers with an ack. Backpressure through
 * bufferedAmountLowThreshold.
 *
 * What arrives is the peer's data: a header that is not `{kind: "file", id, name, size}` with a
 * string id and name and a whole size up to MAX_FILE_BYTES is dropped (and so are its chunks);
 * an end without the string `sha256` the bytes hash to fails the transfer; chunks beyond the announced size fail the transfer. The receiver copies
 * each chunk into one buffer of the announced size as it arrives, so the end costs only the
 * hash. Sending a file larger than MAX_FILE_BYTES fails at once with "file_too_large". A received file's `type` is sniffed from
 * its bytes (`sniffType`, null when it is no photo or PDF) and its blob carries that type, or
 * application/octet-stream — never the type the sender claimed (kept as `claimed`).
 *
 * Events: "progress" (detail: {id, name, direction, done, size}), "file" (detail: {id, name,
 * type, claimed, size, sha256, blob, ok}), "sent" (detail: {id, ok}), "error" (detail: {id, message}).
 */
export class FileChannel extends EventTarget {
  /** @param {Call} call */
  constructor(call) {
    super();
    this.call = call;
    /** @type {RTCDataChannel} */
    this.channel = /** @type {any} */ (null);
    if (call.channel) this.attach(call.channel);
    // A new channel comes with each new RTCPeerConnection (first answer, peer reloaded).
    call.addEventListener("channel", () => { if (call.channel !== this.channel) this.attach(call.channel); });
    /** @type {Map<string, {meta: any, bytes: Uint8Array, received: number, overflow: boolean}>} */
    this.incoming = new Map();
    /** @type {string | null} */
    this.current = null;
    /** @type {Map<string, (ack: any) => void>} */
    this.waiting = new Map();
  }

  /** @param {RTCDataChannel} channel */
  attach(channel) {
    this.channel = channel;
    channel.bufferedAmountLowThreshold = LOW_WATER;
    channel.addEventListener("message", (event) => this.onMessage(event.data));
  }

  chunkSize() {
    const max = this.call.pc.sctp?.maxMessageSize || 65536;
    return Math.max(16384, Math.min(256 * 1024, max));
  }

  /** @param {any} data */
  onMessage(data) {
    if (data instanceof ArrayBuffer) {
      const entry = this.current ? this.incoming.get(this.current) : null;
      if (!entry || entry.overflow) return;
      if (entry.received + data.byteLength > entry.meta.size) {
        console.warn("data channel: more bytes than announced; the transfer fails", entry.meta.id);
        entry.overflow = true;
        entry.bytes = new Uint8Array(0);
        return;
      }
      entry.bytes.set(new Uint8Array(data), entry.received);
      entry.received += data.byteLength;
      this.dispatchEvent(new CustomEvent("progress", {
        detail: { id: entry.meta.id, name: entry.meta.name, direction: "in", done: entry.received, size: entry.meta.size },
      }));
      return;
    }
    const frame = parseFrame(data, "kind", "data channel");
    if (!frame) return;
    if (frame.kind === "file") {
      if (!validHeader(frame)) {
        console.warn("data channel: dropped a file header that is not {id, name, size ≤ 25 MiB}", frame);
        this.current = null;  // its chunks are dropped too
        return;
      }
      this.incoming.set(frame.id, { meta: frame, bytes: new Uint8Array(frame.size), received: 0, overflow: false });
      this.current = frame.id;
      this.dispatchEvent(new CustomEvent("progress", {
        detail: { id: frame.id, name: frame.name, direction: "in", done: 0, size: frame.size },
      }));
    } else if (frame.kind === "end") {
      this.finish(frame.id, frame.sha256);
    } else if (frame.kind === "ack") {
      const resolve = this.waiting.get(frame.id);
      if (resolve) resolve(frame);
    }
  }

  /** @param {string} id @param {unknown} sha256 what the sender hashed */
  async finish(id, sha256) {
    const entry = this.incoming.get(id);
    if (!entry) return;
    this.incoming.delete(id);
    if (this.current === id) this.current = null;
    const bytes = entry.bytes;
    const sha = await sha256Hex(bytes);
    const ok = !entry.overflow && sha === sha256 && entry.received === entry.meta.size;
    const type = sniffType(bytes.subarray(0, 16));
    const blob = new Blob([bytes], { type: type || "application/octet-stream" });
    this.channel.send(JSON.stringify({ kind: "ack", id, ok, sha256: sha }));
    const claimed = typeof entry.meta.type === "string" ? entry.meta.type : "";
    this.dispatchEvent(new CustomEvent("file", {
      detail: { id, name: entry.meta.name, type, claimed, size: blob.size, sha256: sha, blob, ok },
    }));
  }

  waitLow() {
    return new Promise((resolve) => {
      this.channel.addEventListener("bufferedamountlow", () => resolve(undefined), { once: true });
    });
  }

  /**
   * Send one file; resolves with the receiver's ack ({ok, sha256}).
   * @param {Blob} file @param {string} name
   */
  async send(file, name) {
    if (file.size > MAX_FILE_BYTES) throw new Error("file_too_large");
    if (!this.channel || this.channel.readyState !== "open") {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("channel_not_open")), 15000);
        this.call.addEventListener("channel-open", () => { clearTimeout(timer); resolve(undefined); }, { once: true });
      });
    }
    const buffer = await file.arrayBuffer();
    const hashing = sha256Hex(buffer);  // off the main thread, while the chunks go out
    const id = Math.random().toString(36).slice(2, 12);
    const size = buffer.byteLength;
    const chunk = this.chunkSize();
    const acked = new Promise((resolve) => this.waiting.set(id, resolve));
    this.channel.send(JSON.stringify({ kind: "file", id, name, size, type: file.type }));
    for (let offset = 0; offset < size; offset += chunk) {
      if (this.channel.bufferedAmount > HIGH_WATER) await this.waitLow();
      if (this.channel.readyState !== "open") throw new Error("channel_closed");
      this.channel.send(new Uint8Array(buffer, offset, Math.min(chunk, size - offset)));
      this.dispatchEvent(new CustomEvent("progress", {
        detail: { id, name, direction: "out", done: Math.min(size, offset + chunk), size },
      }));
    }
    const sha256 = await hashing;
    this.channel.send(JSON.stringify({ kind: "end", id, sha256 }));
    const ack = await Promise.race([
      acked,
      new Promise((_, reject) => setTimeout(() => reject(new Error("no_ack")), 60000)),
    ]);
    this.waiting.delete(id);
    this.dispatchEvent(new CustomEvent("sent", { detail: { id, ok: /** @type {any} */ (ack).ok } }));
    return { id, sha256, ...(/** @type {any} */ (ack)) };
  }
}

/** A file header from the peer that the receiver can use. @param {Record<string, any>} frame */
function validHeader(frame) {
  return typeof frame.id === "string" && frame.id.length > 0 && frame.id.length <= 64
    && typeof frame.name === "string" && frame.name.length <= 255
    && Number.isSafeInteger(frame.size) && frame.size >= 0 && frame.size <= MAX_FILE_BYTES;
}

/**
 * Keep a file sent in the call on the server against the ticket (checked there by SHA-256): a
 * photo or PDF under its type (the blob's, sniffed from its bytes), any other file as
 * application/octet-stream, which the server only ever serves as a download.
 * @param {number} ticketId @param {{name: string, blob: Blob, sha256: string}} file
 * @param {string} sender @param {Record<string, string>} [headers]
 */
export async function uploadFile(ticketId, file, sender, headers = {}) {
  const response = await fetch(`/api/v1/tickets/${ticketId}/files`, {
    method: "POST",
    body: file.blob,
    credentials: "same-origin",
    headers: {
      "Content-Type": shownType(file.blob.type) || OTHER_TYPE,
      "X-File-Name": encodeURIComponent(file.name),
      "X-File-SHA256": file.sha256,
      "X-File-Sender": sender,
      ...headers,
    },
  });
  const body = await response.json();
  if (!response.ok) throw Object.assign(new Error(body.error?.message || "upload failed"), { code: body.error?.code });
  return body.file;
}

// ------------------------------------------------------------------ network quality

/** @param {number} value @param {number} low @param {number} high */
const clamp = (value, low, high) => Math.min(high, Math.max(low, value));
/** @param {number} value @param {number} places */
const round = (value, places) => Math.round(value * 10 ** places) / 10 ** places;

/**
 * The path a connection uses, from a getStats report: the nominated candidate pair's round trip
 * and this side's candidate type ("host", "srflx", "prflx", "relay") and, when relayed, how it
 * reaches the TURN server ("udp", "tcp", "tls").
 * @param {RTCStatsReport} report
 * @returns {{rtt_ms: number | null, candidate: string | null, protocol: string | null}}
 */
export function selectedPath(report) {
  /** @type {any} */
  let pair = null;
  report.forEach((/** @type {any} */ s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) || pair;
  });
  if (!pair) {
    report.forEach((/** @type {any} */ s) => {
      if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
    });
  }
  if (!pair) return { rtt_ms: null, candidate: null, protocol: null };
  const local = /** @type {any} */ (report.get(pair.localCandidateId)) || {};
  const rtt = typeof pair.currentRoundTripTime === "number" ? round(clamp(pair.currentRoundTripTime * 1000, 0, 60000), 1) : null;
  const protocol = local.candidateType === "relay" ? local.relayProtocol || null : local.protocol || null;
  return { rtt_ms: rtt, candidate: local.candidateType || null, protocol };
}

/**
 * A `call.stats` summary of the period since `previous` (what the last summary saw, by stats
 * id): round trip and path, packet loss over everything received, frame rate and freezes of
 * the busiest received video, received bitrate.
 * @param {RTCStatsReport} report @param {Map<string, any>} previous
 * @returns {{stats: Record<string, any>, seen: Map<string, any>}}
 */
export function summarizeStats(report, previous) {
  const path = selectedPath(report);
  /** @type {Map<string, any>} */
  const seen = new Map();
  let lost = 0;
  let received = 0;
  let bytes = 0;
  let seconds = 0;
  /** @type {{frames: number, fps: number, freezes: number} | null} */
  let video = null;
  report.forEach((/** @type {any} */ s) => {
    if (s.type !== "inbound-rtp") return;
    seen.set(s.id, s);
    const before = previous.get(s.id) || { packetsLost: 0, packetsReceived: 0, bytesReceived: 0, framesDecoded: 0, freezeCount: 0, timestamp: s.timestamp };
    lost += Math.max(0, (s.packetsLost || 0) - (before.packetsLost || 0));
    received += Math.max(0, (s.packetsReceived || 0) - (before.packetsReceived || 0));
    bytes += Math.max(0, (s.bytesReceived || 0) - (before.bytesReceived || 0));
    seconds = Math.max(seconds, (s.timestamp - before.timestamp) / 1000);
    if (s.kind === "video") {
      const frames = Math.max(0, (s.framesDecoded || 0) - (before.framesDecoded || 0));
      const span = (s.timestamp - before.timestamp) / 1000;
      const fps = typeof s.framesPerSecond === "number" ? s.framesPerSecond : span > 0 ? frames / span : 0;
      const freezes = Math.max(0, (s.freezeCount || 0) - (before.freezeCount || 0));
      if (!video || frames > video.frames) video = { frames, fps, freezes };
    }
  });
  const stats = {
    rtt_ms: path.rtt_ms,
    loss: received + lost > 0 ? round(lost / (received + lost), 4) : null,
    fps: video && video.frames > 0 ? round(clamp(video.fps, 0, 240), 1) : null,
    freezes: video ? clamp(video.freezes, 0, 10000) : 0,
    relay: path.candidate === "relay",
    candidate: path.candidate,
    bitrate_kbps: seconds > 0 ? round(clamp((bytes * 8) / seconds / 1000, 0, 1e6), 1) : null,
  };
  return { stats, seen };
}

/**
 * The next frame `accept` takes, or null after `ms`.
 * @param {Connection} connection @param {(frame: Frame) => boolean} accept @param {number} ms
 * @returns {Promise<Frame | null>}
 */
function nextFrame(connection, accept, ms) {
  return new Promise((resolve) => {
    const done = (/** @type {Frame | null} */ frame) => {
      clearTimeout(timer);
      connection.removeEventListener("message", listen);
      resolve(frame);
    };
    const listen = (/** @type {any} */ event) => { if (accept(event.detail)) done(event.detail); };
    const timer = setTimeout(() => done(null), Math.max(0, ms));
    connection.addEventListener("message", listen);
  });
}

/** @param {RTCPeerConnection} pc @param {number} ms resolves when candidates are gathered, or after ms */
function gathered(pc, ms) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(undefined); }
    });
  });
}

/**
 * The pre-call network check (docs/protocol.md, `netcheck.offer`): the signaling round trip (the
 * median of three pings with ids), then `probes` data-channel probes through the ICE servers of the welcome
 * to the server's echo peer — unordered and never retransmitted, so loss shows — and the
 * candidate type the path took. Bounded by `seconds`. The figures go to the server, which judges
 * them and keeps them for the ticket; resolves with its verdict: "good", "poor", "failed"
 * (no media path, or no server), or "busy" (the server's echo peers are all in use: not checked).
 * An aborted `signal` (the call started: its own figures replace the check's) stops the check
 * at its next step and resolves with "stopped": nothing is sent, so a check that only ran out
 * of time beside the call's set-up is not reported as a failed network.
 * @param {Connection} connection
 * @param {{probes?: number, intervalMs?: number, seconds?: number, signal?: AbortSignal}} [options]
 * @returns {Promise<{verdict: string, netcheck: Record<string, any> | null}>}
 */
export async function networkCheck(connection, { probes = 20, intervalMs = 50, seconds = 5, signal } = {}) {
  const deadline = performance.now() + seconds * 1000;
  const left = () => deadline - performance.now();
  const STOPPED = { verdict: "stopped", netcheck: null };
  /** @type {Promise<typeof STOPPED>} */
  const aborted = new Promise((resolve) => {
    if (signal?.aborted) resolve(STOPPED);
    else signal?.addEventListener("abort", () => resolve(STOPPED), { once: true });
  });
  /** A step of the check, or STOPPED as soon as the signal aborts. @template T @param {Promise<T>} step */
  const unlessStopped = (step) => Promise.race([step, aborted]);
  if (!connection.welcome) return { verdict: "failed", netcheck: null };
  /** @type {number[]} */
  const pings = [];
  for (let n = 0; n < SIGNALING_PINGS; n += 1) {
    const id = `nc${Math.random().toString(36).slice(2, 10)}`;
    const pinged = performance.now();
    const pong = nextFrame(connection, (f) => f.type === "pong" && f.id === id, left());
    if (!connection.send({ type: "ping", id })) return { verdict: "failed", netcheck: null };
    const ponged = await unlessStopped(pong);
    if (ponged === STOPPED) return STOPPED;
    if (!ponged) return { verdict: "failed", netcheck: null };
    pings.push(performance.now() - pinged);
  }
  const signalingRtt = round(pings.sort((a, b) => a - b)[Math.floor(pings.length / 2)], 1);
  const pc = new RTCPeerConnection({
    iceServers: connection.welcome.ice_servers || [],
    iceTransportPolicy: connection.welcome.ice_transport_policy || "all",
  });
  /** @type {Record<string, any>} */
  const media = { connected: false, probes, answered: 0 };
  /** @type {string | null} */
  let check = null;
  try {
    const channel = pc.createDataChannel("netcheck", { ordered: false, maxRetransmits: 0 });
    const opened = new Promise((resolve) => { channel.onopen = resolve; });
    /** @type {Map<number, number>} */
    const sent = new Map();
    /** @type {number[]} */
    const rtts = [];
    channel.onmessage = (event) => {
      const echo = parseFrame(event.data, "kind", "netcheck");
      const at = echo && sent.get(echo.n);
      if (echo && typeof at === "number") { rtts.push(performance.now() - at); sent.delete(echo.n); }
    };
    await pc.setLocalDescription();
    if (await unlessStopped(gathered(pc, Math.min(2000, left()))) === STOPPED) return STOPPED;
    const reply = nextFrame(connection, (f) => f.type === "netcheck.answer" || (f.type === "error" && f.ref === "netcheck.offer"), left());
    connection.send({ type: "netcheck.offer", sdp: pc.localDescription?.sdp });
    const answer = await unlessStopped(reply);
    if (answer === STOPPED) return STOPPED;
    if (answer?.type === "error" && answer.code === "netcheck_busy") return { verdict: "busy", netcheck: null };
    if (answer?.type === "netcheck.answer") {
      check = answer.check;
      if (await unlessStopped(pc.setRemoteDescription({ type: "answer", sdp: answer.sdp })) === STOPPED) return STOPPED;
      const open = await unlessStopped(Promise.race([opened.then(() => true), new Promise((r) => setTimeout(() => r(false), Math.max(0, left())))]));
      if (open === STOPPED) return STOPPED;
      if (open) {
        media.connected = true;
        for (let n = 0; n < probes && left() > 0; n += 1) {
          sent.set(n, performance.now());
          channel.send(JSON.stringify({ kind: "probe", n }));
          await new Promise((r) => setTimeout(r, intervalMs));
          if (signal?.aborted) return STOPPED;
        }
        const waitUntil = performance.now() + Math.min(1000, Math.max(0, left()));
        while (sent.size && performance.now() < waitUntil && !signal?.aborted) await new Promise((r) => setTimeout(r, 20));
        if (signal?.aborted) return STOPPED;
        media.answered = rtts.length;
        media.loss = probes ? round(1 - rtts.length / probes, 4) : 0;
        const sorted = [...rtts].sort((a, b) => a - b);
        media.rtt_ms = sorted.length ? round(clamp(sorted[Math.floor(sorted.length / 2)], 0, 60000), 1) : null;
        const path = selectedPath(await pc.getStats());
        media.candidate = path.candidate;
        media.protocol = path.protocol;
      }
    }
  } catch (error) {
    console.warn("network check stopped", error);
  } finally {
    pc.close();
  }
  if (signal?.aborted) return STOPPED;
  const saved = nextFrame(connection, (f) => f.type === "netcheck.saved", 3000);
  if (!connection.send({ type: "netcheck.result", check, signaling_rtt_ms: signalingRtt, media })) {
    return { verdict: "failed", netcheck: null };
  }
  const frame = await saved;
  return frame ? { verdict: frame.verdict, netcheck: frame.netcheck } : { verdict: "failed", netcheck: null };
}
