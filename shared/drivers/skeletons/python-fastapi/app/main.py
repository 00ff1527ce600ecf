"""{{ name }}: {{ description }}"""
from fastapi import FastAPI

app = FastAPI(title="{{ name }}")


@app.get("/healthz")
def healthz() -> str:
    return "ok"
