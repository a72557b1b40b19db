"""A channel producer in Python with only a generic NATS client (nats-py), written from
docs/channels.md alone: connect as the channel's own user, publish a submission as JSON, read
intake's answer from the channel's durable consumer `answers-<channel>`.

    pip install 'nats-py[nkeys]'
    JIESU_NATS_URL=nats://127.0.0.1:4333 JIESU_CHANNEL=wechat \
    JIESU_SEED=data/nats-keys/channel-wechat.nk python3 producer.py < submission.json

Prints `accepted <case_no> <query_code>` or `rejected <field>: <reason>` lines; exits 1 when
rejected, 2 when no answer came in time (the submission is kept: read the answer later).
"""
import asyncio
import hashlib
import json
import os
import sys

import nats

URL = os.environ.get("JIESU_NATS_URL", "nats://127.0.0.1:4333")
ROOT = os.environ.get("JIESU_ROOT", "jiesu")
CHANNEL = os.environ["JIESU_CHANNEL"]
SEED = os.environ["JIESU_SEED"]


def message_id(channel: str, ref: str, body: bytes) -> str:
    """Channel, reference and a hash of the body: a re-send of the same bytes is dropped by
    JetStream, a corrected body is not."""
    return f"{channel}:{ref}:{hashlib.sha256(body).hexdigest()[:16]}"


async def main() -> int:
    submission = json.load(sys.stdin)
    nc = await nats.connect(URL, nkeys_seed=SEED, inbox_prefix=f"_INBOX.channel-{CHANNEL}".encode())
    js = nc.jetstream()
    body = json.dumps(submission, ensure_ascii=False).encode()  # hash exactly these bytes
    ref = submission["channel_ref"]
    await js.publish(
        f"{ROOT}.intake.{CHANNEL}", body,
        headers={"Content-Type": "application/json", "Nats-Msg-Id": message_id(CHANNEL, ref, body)})
    stream = ROOT.upper().replace(".", "_").replace("-", "_") + "_INTAKE"
    # Replies come only to the channel's own inbox prefix: the server lets nothing else in.
    answers = await js.pull_subscribe_bind(
        durable=f"answers-{CHANNEL}", stream=stream, inbox_prefix=f"_INBOX.channel-{CHANNEL}.".encode())
    for _ in range(30):
        try:
            batch = await answers.fetch(10, timeout=1)
        except nats.errors.TimeoutError:
            continue
        for msg in batch:
            await msg.ack()
            if (msg.headers or {}).get("Jiesu-Channel-Ref") != ref:
                continue  # an answer to another submission of ours
            answer = json.loads(msg.data)
            await nc.close()
            if msg.subject.startswith(f"{ROOT}.intake.accepted."):
                print("accepted", answer["case_no"], answer["query_code"], "(sent before)" if answer["duplicate"] else "")
                return 0
            for v in answer["violations"]:
                print(f"rejected {v['field']}: {v['reason']} ({v['reason_zh']})")
            return 1
    await nc.close()
    print("no answer yet: the submission is kept; read the answer later", file=sys.stderr)
    return 2


sys.exit(asyncio.run(main()))
