"""A line-oriented bridge to AWS mls-rs (through its UniFFI Python bindings)
for Parley's interoperability test.

Each request is one JSON object on stdin; each reply one JSON object on stdout:
{"ok": ...} or {"error": "..."}. Bytes travel as hex. mls-rs clients and
their groups are kept by name. Commits a client makes are applied to its own
group at once, standing in for the delivery service's echo.
"""
import json
import sys

import mls_rs_uniffi as mls

SUITE = mls.CipherSuite.CURVE25519_AES128  # MLS cipher suite 1
clients = {}
groups = {}
identities = {}


def message(hex_bytes):
    return mls.Message.from_bytes(bytes.fromhex(hex_bytes))


def own_commit(name, output):
    groups[name].process_incoming_message(output.commit_message)
    return {
        "commit": output.commit_message.to_bytes().hex(),
        "welcome": output.welcome_message.to_bytes().hex() if output.welcome_message else None,
        "ratchet_tree": output.ratchet_tree.bytes.hex() if output.ratchet_tree else None,
    }


def handle(request):
    op, name = request["op"], request.get("client")
    if op == "new_client":
        clients[name] = mls.Client(name.encode(), mls.generate_signature_keypair(SUITE), mls.client_config_default())
        return {}
    if op == "key_package":
        return {"key_package": clients[name].generate_key_package_message().to_bytes().hex()}
    if op == "create_group":
        groups[name] = clients[name].create_group(bytes.fromhex(request["group_id"]))
        return {}
    if op == "join":
        tree = mls.RatchetTree(bytes=bytes.fromhex(request["ratchet_tree"])) if request.get("ratchet_tree") else None
        groups[name] = clients[name].join_group(tree, message(request["welcome"])).group
        return {}
    if op == "add":
        return own_commit(name, groups[name].add_members([message(k) for k in request["key_packages"]]))
    if op == "remove":
        return own_commit(name, groups[name].remove_members([identities[request["member"]]]))
    if op == "commit":
        return own_commit(name, groups[name].commit())
    if op == "encrypt":
        return {"message": groups[name].encrypt_application_message(bytes.fromhex(request["data"])).to_bytes().hex()}
    if op == "export":
        secret = groups[name].export_secret(request["label"].encode(), bytes.fromhex(request["context"]), request["length"])
        return {"secret": secret.hex()}
    if op == "process":
        received = groups[name].process_incoming_message(message(request["message"]))
        if received.is_application_message():
            if request.get("remember_sender_as"):
                identities[request["remember_sender_as"]] = received.sender
            return {"kind": "application", "data": received.data.hex()}
        if received.is_commit():
            return {"kind": "commit", "removed_self": received.effect.is_removed()}
        if received.is_received_proposal():
            return {"kind": "proposal"}
        return {"kind": "other"}
    raise ValueError("unknown op " + op)


for line in sys.stdin:
    try:
        reply = {"ok": handle(json.loads(line))}
    except Exception as error:  # every failure goes back to the test as text
        reply = {"error": "%s: %s" % (type(error).__name__, error)}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
