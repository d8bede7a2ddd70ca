"""matrix-nio (Debian's python3-matrix-nio), unmodified, against a Hearth base URL.

nio speaks the old API: /_matrix/client/r0/... with ?access_token= in the query. Prints one
JSON object with what it saw; the vitest side asserts on it.
"""
import asyncio
import json
import sys

from nio import AsyncClient, LoginResponse, RegisterResponse, RoomCreateResponse, RoomMessagesResponse, RoomSendResponse, SyncResponse


async def main(base_url: str, username: str, password: str) -> dict:
    out = {}
    client = AsyncClient(base_url, username)
    try:
        reg = await client.register(username, password)
        out["register"] = type(reg).__name__
        out["user_id"] = getattr(reg, "user_id", None)
        login = await client.login(password)
        out["login"] = type(login).__name__
        if not isinstance(login, LoginResponse):
            return out
        created = await client.room_create(name="nio room", topic="from nio")
        out["create"] = type(created).__name__
        room_id = created.room_id if isinstance(created, RoomCreateResponse) else None
        sent = []
        for i in range(3):
            r = await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": f"nio {i}"})
            sent.append(r.event_id if isinstance(r, RoomSendResponse) else type(r).__name__)
        out["sent"] = sent
        sync = await client.sync(timeout=0, full_state=True)
        out["sync"] = type(sync).__name__
        if isinstance(sync, SyncResponse):
            room = sync.rooms.join.get(room_id)
            out["sync_bodies"] = [getattr(e, "body", None) for e in room.timeline.events if hasattr(e, "body")] if room else None
            out["room_name"] = client.rooms[room_id].name if room_id in client.rooms else None
        messages = await client.room_messages(room_id, start=sync.next_batch if isinstance(sync, SyncResponse) else "", limit=10)
        out["messages"] = type(messages).__name__
        if isinstance(messages, RoomMessagesResponse):
            out["message_bodies"] = [getattr(e, "body", None) for e in messages.chunk if hasattr(e, "body")]
        out["whoami"] = (await client.whoami()).__class__.__name__
        await client.logout()
    finally:
        await client.close()
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))))
