"""The baseline for serving benchmarks: a bare Flask route on the same gunicorn settings."""

from flask import Flask

app = Flask(__name__)


@app.get("/hello")
def hello() -> str:
    """Nothing at all, as fast as Flask can say it."""
    return "hello"
