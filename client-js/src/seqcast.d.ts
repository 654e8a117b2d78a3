// Type declarations for the seqcast client (src/seqcast.js, served as /v1/client.js).

/** Connection state; "connecting" is the initial state, "closed" is final. */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** Subscription state; "unsubscribed" is final. */
export type SubscriptionState = "subscribing" | "subscribed" | "unsubscribed";

/** A place in a channel's history: the last delivered seq of one epoch. */
export interface Position {
  /** null until the channel's epoch is known (e.g. an empty channel). */
  epoch: string | null;
  /** 0 before anything is known. */
  seq: number;
}

/** A delivered message; `data` is the payload as published. */
export interface Message<T = unknown> {
  channel: string;
  epoch: string;
  seq: number;
  /** RFC 3339 commit time. */
  ts: string;
  data: T;
}

/** The server's answer to a subscribe. */
export interface SubscribedInfo {
  channel: string;
  /** null for a channel with no history yet. */
  epoch: string | null;
  /** The channel's last seq when the subscription started (0 when empty). */
  head: number;
}

/**
 * The asked position could not be resumed without a gap; delivery restarts at first_seq.
 * "truncated": the messages in `missed` are no longer retained. "epoch_changed": the
 * channel's history was destroyed. "rewound": the database failed over to a standby
 * that lacked the messages after `rewound_to`; the position held named messages that no
 * longer exist, and delivery goes on at rewound_to + 1 in the new epoch (refetch state).
 */
export interface ResetInfo {
  channel: string;
  epoch: string;
  first_seq: number;
  head: number;
  reason: "truncated" | "epoch_changed" | "rewound";
  /** The exact range of seqs lost, or null when the epoch changed or was rewound. */
  missed: [number, number] | null;
  /** "rewound" only: the last seq that survived (the same message in the new epoch). */
  rewound_to?: number;
}

/** A message skipped seqs in the same epoch; it was delivered anyway. */
export interface GapInfo {
  channel: string;
  epoch: string;
  expected: number;
  seq: number;
}

/** An error frame from the server (channel errors go to the subscription). */
export interface ServerErrorInfo {
  code: string;
  message: string;
  channel?: string;
}

/**
 * Everything reported on Seqcast "error": server error frames without a subscribed
 * channel, and client-side problems with codes "transport_error", "url_error",
 * "bad_frame", "timeout", "handler_error", "storage_error", "closed_by_server".
 */
export interface ErrorInfo {
  code: string;
  message: string;
  channel?: string;
  /** The close code, for "closed_by_server". */
  closeCode?: number;
  /** The thrown value or event behind the error, when there is one. */
  cause?: unknown;
}

/** What the client needs from storage: localStorage and sessionStorage fit. */
export interface PositionStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** The part of a WebSocket the client uses; the browser's and the `ws` package's fit. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => any) | null;
  onmessage: ((event: any) => any) | null;
  onerror: ((event: any) => any) | null;
  onclose: ((event: any) => any) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

type MaybePromise<T> = T | Promise<T>;

export interface SeqcastOptions {
  /** JWT sent as ?token=… on every (re)connect; a function is called each time. */
  token?: string | null | (() => MaybePromise<string | null | undefined>);
  /** Saves each channel's position under `seqcast:pos:<channel>`, to resume after a reload. */
  storage?: PositionStorage | null;
  /** WebSocket constructor; default globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor;
  /** Base reconnect delay in ms (default 250). */
  minReconnectDelay?: number;
  /** Reconnect delay cap in ms (default 30000). */
  maxReconnectDelay?: number;
}

export interface SubscribeOptions {
  /** Resume after this seq; overrides a stored position. */
  since?: number;
  /** The epoch `since` belongs to. */
  epoch?: string | null;
}

/** Its return value is ignored; the position advances when it returns. */
/**
 * Called once per message, in order. Returning a promise (e.g. "rendered") holds the
 * position saved to `storage` back until it settles, so that a page that unloads first
 * gets the message again after the reload; delivery of later messages does not wait.
 */
export type MessageHandler<T = unknown> = (message: Message<T>) => unknown;

export interface SubscriptionEvents {
  subscribed: (info: SubscribedInfo) => void;
  reset: (info: ResetInfo) => void;
  error: (info: ServerErrorInfo) => void;
  gap: (info: GapInfo) => void;
}

export interface SeqcastEvents {
  state: (state: ConnectionState, previous: ConnectionState) => void;
  error: (info: ErrorInfo) => void;
}

/** One channel on one Seqcast; created by Seqcast#subscribe. */
export declare class Subscription<T = unknown> {
  private constructor();
  readonly channel: string;
  readonly state: SubscriptionState;
  /** The last delivered {epoch, seq}, or the resume point; a copy. */
  readonly position: Position;
  on<E extends keyof SubscriptionEvents>(event: E, listener: SubscriptionEvents[E]): this;
  off<E extends keyof SubscriptionEvents>(event: E, listener: SubscriptionEvents[E]): this;
  /** Stops delivery for good; not resubscribed after a reconnect. */
  unsubscribe(): void;
  /** Phantom member that keeps the payload type attached. */
  private readonly __payload?: T;
}

export declare class Seqcast {
  /**
   * Connects at once and keeps reconnecting until close() or a terminal close code.
   * @param url the ws(s)://…/v1/ws URL, or a (possibly async) function returning it,
   *   called on every (re)connect.
   * @throws TypeError when there is no WebSocket implementation or an option is invalid.
   */
  constructor(url: string | (() => MaybePromise<string>), options?: SeqcastOptions);
  readonly state: ConnectionState;
  /**
   * Subscribes to a channel; one subscription per channel per Seqcast.
   * @throws TypeError for an invalid channel name, since, epoch or handler.
   * @throws Error when closed or when the channel is already subscribed.
   */
  subscribe<T = unknown>(
    channel: string,
    options: SubscribeOptions | undefined,
    handler: MessageHandler<T>,
  ): Subscription<T>;
  subscribe<T = unknown>(channel: string, handler: MessageHandler<T>): Subscription<T>;
  /**
   * Subscribes to the channel a Rails-signed stream name names (turbo-rails'
   * signed_stream_name); the server verifies it ("error" event "forbidden" if not).
   * @throws TypeError when it is not of the signed form.
   */
  subscribeSigned<T = unknown>(
    signedName: string,
    options: SubscribeOptions | undefined,
    handler: MessageHandler<T>,
  ): Subscription<T>;
  subscribeSigned<T = unknown>(signedName: string, handler: MessageHandler<T>): Subscription<T>;
  on<E extends keyof SeqcastEvents>(event: E, listener: SeqcastEvents[E]): this;
  off<E extends keyof SeqcastEvents>(event: E, listener: SeqcastEvents[E]): this;
  /** Closes for good: state "closed", no reconnect, no timers left. */
  close(): void;
}

/** Close codes the server uses. */
export declare const codes: {
  readonly normal: 1000;
  readonly goingAway: 1001;
  readonly abnormal: 1006;
  readonly policy: 1008;
  readonly tooBig: 1009;
  readonly draining: 1012;
  readonly slowConsumer: 1013;
};

/** 3500–3999 and 4500–4999 end the client; every other code reconnects. */
export declare function isTerminalCloseCode(code: number): boolean;

/** Reconnect delay in ms for an attempt: full jitter below min(max, min·2^attempt). */
export declare function backoffDelay(
  attempt: number,
  min: number,
  max: number,
  random?: () => number,
): number;

/** The stream name inside a Rails-signed name (not verified), or null. */
export declare function channelOfSignedName(signedName: string): string | null;

// --- @rails/actioncable's consumer API, with resume -------------------------------------

/** An Action Cable identifier: Turbo's, or $pubsub with a signed or plain stream name. */
export type CableIdentifier =
  | { channel: "Turbo::StreamsChannel"; signed_stream_name: string; [param: string]: unknown }
  | { channel: "$pubsub"; signed_stream_name: string }
  | { channel: "$pubsub"; stream_name: string }
  | { channel: string; [param: string]: unknown };

/** The callbacks of @rails/actioncable's subscriptions.create (all optional). */
export interface CableMixin<T = unknown> {
  initialized?(this: CableSubscription<T>): void;
  /** After each (re)subscribe; `reconnected` after the first. */
  connected?(this: CableSubscription<T>, details: { reconnected: boolean }): void;
  disconnected?(this: CableSubscription<T>, details: { willAttemptReconnect: boolean }): void;
  /**
   * Every message once, in order, resumed across reconnects (and reloads with `storage`).
   * A returned promise holds the stored position back until it settles.
   */
  received?(this: CableSubscription<T>, data: T): unknown;
  /** A bad signature, a stream the token may not read, or an unknown channel. */
  rejected?(this: CableSubscription<T>): void;
  [member: string]: unknown;
}

export interface CableSubscription<T = unknown> {
  readonly consumer: CableConsumer;
  /** JSON of the identifier, as @rails/actioncable has it. */
  readonly identifier: string;
  unsubscribe(): void;
  /** Receive-only: always false. */
  perform(action: string, data?: object): false;
  send(data: object): false;
}

export interface CableSubscriptions {
  create<T = unknown>(
    identifier: CableIdentifier | string,
    mixin?: CableMixin<T>,
  ): CableSubscription<T> & CableMixin<T>;
  findAll(identifier: string): CableSubscription[];
  remove(subscription: CableSubscription): void;
  readonly subscriptions: CableSubscription[];
}

export interface CableConsumer {
  readonly subscriptions: CableSubscriptions;
  /** The Seqcast connection underneath. */
  readonly client: Seqcast;
  disconnect(): void;
  send(data: object): false;
}

/**
 * @rails/actioncable's createConsumer over seqcast's protocol, with resume.
 * @param url the ws(s)://…/v1/ws URL (default: /v1/ws on this page's host).
 */
export declare function createConsumer(url?: string | (() => MaybePromise<string>), options?: SeqcastOptions): CableConsumer;

/** What defineTurboStreamSource needs of @hotwired/turbo. */
export interface TurboStreamSourceApi {
  connectStreamSource(source: EventTarget): void;
  disconnectStreamSource(source: EventTarget): void;
}

/**
 * Defines <turbo-cable-stream-source> over `consumer`, in place of @hotwired/turbo-rails'.
 * @returns false when the element is already defined.
 */
export declare function defineTurboStreamSource(consumer: CableConsumer, turbo: TurboStreamSourceApi): boolean;
