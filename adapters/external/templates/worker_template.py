"""A tvbench worker for a drag method that has no per-case command line (tvbench worker protocol 1).

Copy this file next to your spec (or into the method's clone), fill in ``load`` and ``edit``, and point a spec
with ``mode = "worker"`` at it:

    name = "my-drag"
    mode = "worker"
    inputs = ["image", "mask", "points", "caption"]
    layout = "dragbench"
    cwd = "/path/to/the/method/clone"
    command = ["/path/to/its/env/bin/python", "{spec_dir}/my_worker.py"]

It runs in the method's own environment: Python 3.8 or newer and the standard library are all it needs; the
method's imports go inside ``load`` and ``edit``. ``load`` runs once (models load once), then ``edit`` runs for
every case tvbench sends.

The protocol (tvbench's side is documented in tvbench_adapters/external/worker.py): JSON lines. The worker says
``{"tvbench": "ready", "protocol": 1}`` when loaded; each request is ``{"tvbench": "edit", "id": CASE_ID, ...}``
with every per-case placeholder as a field (``output``, ``seed``, ``seed32``, ``input_dir``, the layout's files
such as ``source``/``meta``/``mask``, ``prompt``, ``points`` as ``[[x_h, y_h, x_t, y_t], ...]``, ``width``,
``height``; ``device`` when the command passes ``{device}``); the answer is ``{"tvbench": "done", "id":
CASE_ID}`` once the image is saved at ``request["output"]`` (optionally with ``"facts": {...}``), or
``{"tvbench": "error", "id": CASE_ID, "message": "..."}``. The worker exits when its stdin closes. Everything the
method prints goes to stderr here, so stray prints cannot be mistaken for answers.
"""

import json
import os
import sys
import traceback

PROTOCOL = 1


def load():
    """Load the method's models once; whatever this returns is passed to every ``edit`` call."""
    raise NotImplementedError("load the method's models here (see the README section 'Bring an external drag method')")


def edit(state, request):
    """Edit one case: read the files named in ``request``, save the image at ``request["output"]``.

    Return ``None`` or a dict of JSON values to record in tvbench's manifest (e.g. ``{"steps": 80}``).
    """
    raise NotImplementedError("call the method here and save its image to request['output']")


def serve(load, edit):
    """Run the protocol loop: ready line, then one answer per request, until stdin closes."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")  # the real stdout, for answers only
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # prints, even from C code, now land in stderr
    sys.stdout = sys.stderr

    def send(message):
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    state = load()
    send({"tvbench": "ready", "protocol": PROTOCOL})
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        case_id = request.get("id")
        try:
            facts = edit(state, request)
        except Exception as exc:  # this case failed; the worker carries on with the next one
            traceback.print_exc()
            message = " ".join(("%s: %s" % (type(exc).__name__, exc)).split())
            send({"tvbench": "error", "id": case_id, "message": message})
            continue
        answer = {"tvbench": "done", "id": case_id}
        if facts:
            answer["facts"] = facts
        send(answer)


if __name__ == "__main__":
    serve(load, edit)
