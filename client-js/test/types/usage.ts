// Type-level usage of the public API; checked by `tsc -p client-js/tsconfig.json --noEmit`.
import {
  channelOfSignedName,
  createConsumer,
  defineTurboStreamSource,
  Seqcast,
  Subscription,
  backoffDelay,
  codes,
  isTerminalCloseCode,
  type ConnectionState,
  type ErrorInfo,
  type Message,
  type Position,
  type ResetInfo,
} from "../../src/seqcast.js";

interface ChatLine {
  user: string;
  text: string;
}

const sc = new Seqcast(() => `wss://${location.host}/v1/ws`, {
  token: async () => (await fetch("/token")).text(),
  storage: localStorage,
  WebSocket,
  minReconnectDelay: 250,
  maxReconnectDelay: 30_000,
});

const plain = new Seqcast("ws://localhost:8080/v1/ws", { token: "jwt" });
plain.close();

const sub: Subscription<ChatLine> = sc.subscribe<ChatLine>(
  "room:1",
  { since: 41, epoch: "e1" },
  (msg: Message<ChatLine>) => {
    const line: string = `${msg.seq} ${msg.data.user}: ${msg.data.text} @ ${msg.ts}`;
    console.log(line, msg.epoch, msg.channel);
  },
);
const liveOnly = sc.subscribe("news", (msg) => console.log(msg.data));

sub.on("reset", (info: ResetInfo) => {
  const lost = info.missed ? info.missed[1] - info.missed[0] + 1 : "unknown";
  console.log(info.reason, info.first_seq, info.head, lost);
});
sub.on("subscribed", (info) => console.log(info.epoch ?? "empty channel", info.head));
sub.on("error", (info) => console.log(info.code, info.message, info.channel));
sub.on("gap", (info) => console.log(info.expected, info.seq));

const where: Position = sub.position;
const epoch: string | null = where.epoch;
console.log(epoch, where.seq, sub.state, sub.channel);

sc.on("state", (state: ConnectionState, previous: ConnectionState) =>
  console.log(previous, "→", state),
);
sc.on("error", (err: ErrorInfo) => console.log(err.code, err.message, err.closeCode));

const delay: number = backoffDelay(3, 250, 30_000, () => 0.5);
const terminal: boolean = isTerminalCloseCode(codes.slowConsumer);
console.log(delay, terminal, sc.state);

liveOnly.unsubscribe();
sub.unsubscribe();
sc.close();

// @ts-expect-error: "since" is a number
sc.subscribe("room:2", { since: "41" }, () => {});
// @ts-expect-error: not an event of a subscription
sub.on("state", () => {});

// createConsumer: @rails/actioncable's shape.
const consumer = createConsumer("wss://example.com/v1/ws", { storage: localStorage });
const room = consumer.subscriptions.create<string>(
  { channel: "Turbo::StreamsChannel", signed_stream_name: "InJvb206MSI=--00" },
  {
    connected({ reconnected }) {
      console.log(reconnected, this.identifier);
    },
    disconnected({ willAttemptReconnect }) {
      console.log(willAttemptReconnect);
    },
    received(html: string) {
      console.log(html.length);
    },
    rejected() {},
  },
);
const performed: false = room.perform("speak", {});
room.unsubscribe();
defineTurboStreamSource(consumer, { connectStreamSource() {}, disconnectStreamSource() {} });
const signedSub = sc.subscribeSigned("InJvb206MSI=--00", (m) => console.log(m.seq));
const named: string | null = channelOfSignedName("InJvb206MSI=--00");
console.log(performed, named, signedSub.channel, consumer.client.state);
consumer.disconnect();
