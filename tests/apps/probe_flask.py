"""The deployment probe as a Flask app: flask and werkzeug must come from
the virtualenv corral runs on."""

import flask
import werkzeug
from flask import Flask, jsonify

from probe import alarm_interrupts_sleep, describe

app = Flask(__name__)


@app.get("/probe")
def probe():
    return jsonify(describe(flask=flask.__file__, werkzeug=werkzeug.__file__))


@app.get("/signal")
def signal_view():
    return "interrupted" if alarm_interrupts_sleep() else "not interrupted"
