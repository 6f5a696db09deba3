"""A minimal Flask app: a JSON route, a form POST and Flask's own 404."""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/json")
def json_route():
    return jsonify(framework="flask", args=request.args.to_dict())


@app.post("/form")
def form():
    return f"hello {request.form['name']}"
