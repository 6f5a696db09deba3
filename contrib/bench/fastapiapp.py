"""A small FastAPI JSON endpoint: the ASGI counterpart of flaskapp.py (same body)."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def index():
    return {"message": "Hello, World!", "items": [1, 2, 3], "ok": True}
