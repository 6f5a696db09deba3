"""A FastAPI app for the asgi worker's tests: JSON routes, path and query
parameters, a 4 MiB upload, a StreamingResponse, a background task and a
lifespan that sets up state the routes read."""

import asyncio
import hashlib
import os
from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse, StreamingResponse

DONE = []


@asynccontextmanager
async def lifespan(app):
    app.state.ready = "yes"
    yield {"db": "connected"}
    marker = os.environ.get("FASTAPI_SHUTDOWN_MARKER")
    if marker:
        with open(marker, "a") as f:
            f.write(f"shutdown {os.getpid()}\n")


app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
async def item(item_id: int, q: str = ""):
    return {"item_id": item_id, "q": q, "pid": os.getpid()}


@app.get("/state")
async def state(request: Request):
    return {"db": request.state.db, "ready": request.app.state.ready}


@app.post("/upload")
async def upload(request: Request):
    body = await request.body()
    return {"len": len(body), "sha256": hashlib.sha256(body).hexdigest()}


@app.get("/stream")
async def stream(n: int = 5, gap: float = 0.2):
    async def chunks():
        for i in range(n):
            yield f"part {i}\n"
            await asyncio.sleep(gap)

    return StreamingResponse(chunks(), media_type="text/plain")


async def later(tag: str):
    await asyncio.sleep(0.5)
    DONE.append(tag)


@app.get("/background")
async def background(tag: str, tasks: BackgroundTasks):
    tasks.add_task(later, tag)
    return {"scheduled": tag}


@app.get("/done")
async def done():
    return {"done": DONE}


@app.get("/hello", response_class=PlainTextResponse)
async def hello():
    return "hello from fastapi\n"


@app.websocket("/ws")
async def ws_echo(websocket: WebSocket):
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_json({"echo": text, "db": websocket.state.db})
    except WebSocketDisconnect as exc:
        DONE.append(f"ws {exc.code}")
